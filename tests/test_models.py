"""Networks: shapes, eval-mode BatchNorm, fused decoder path, registry."""

from __future__ import annotations

import pytest
import torch
from helpers_models import randomise_weights

from recon_cli.errors import ConfigError
from recon_cli.models import (
    REGISTRY,
    DecoderConfig,
    ModelConfig,
    build_model,
    default_model_config,
    small_model_config,
)
from recon_cli.models import decoder as decoder_mod
from recon_cli.models.decoder import Decoder
from recon_cli.models.encoders import ResNet18Encoder, ResnetPointnet


def test_decoder_output_shape_and_initial_cbn() -> None:
    dec = Decoder(c_dim=8, hidden=16, n_blocks=2)
    cbn = dec.blocks[0].bn_0
    assert torch.equal(cbn.conv_gamma.weight, torch.zeros(16, 8)) and torch.equal(cbn.conv_gamma.bias, torch.ones(16))
    assert torch.equal(cbn.conv_beta.weight, torch.zeros(16, 8)) and torch.equal(cbn.conv_beta.bias, torch.zeros(16))
    out = dec(torch.rand(3, 50, 3), torch.randn(3, 8))
    assert out.shape == (3, 50)


def test_decoder_fused_eval_path_equals_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    dec = Decoder(c_dim=8, hidden=16, n_blocks=3)
    randomise_weights(dec)
    dec.eval()
    p, c = torch.rand(2, 1000, 3) - 0.5, torch.randn(2, 8)
    with torch.no_grad():
        reference = dec._forward_train(p, c)  # plain modules; BatchNorm in eval uses running stats
        monkeypatch.setattr(decoder_mod, "EVAL_CHUNK", 128)  # chunking must not change results
        fused = dec(p, c)
    assert torch.allclose(fused, reference, atol=1e-5)


def test_decoder_batchnorm_eval_uses_running_stats() -> None:
    dec = Decoder(c_dim=8, hidden=16, n_blocks=1)
    randomise_weights(dec)
    p, c = torch.rand(1, 64, 3), torch.randn(1, 8)
    dec.eval()
    with torch.no_grad():
        full = dec(p, c)
        single = torch.cat([dec(p[:, i : i + 1], c) for i in range(64)], dim=1)
    assert torch.allclose(full, single, atol=1e-5)  # eval: points are independent
    dec.train()
    before = dec.bn.bn.running_mean.clone()
    dec(p, c)
    assert not torch.equal(before, dec.bn.bn.running_mean)  # train: batch statistics update the buffers


def test_image_encoder_shape_and_normalisation() -> None:
    enc = ResNet18Encoder(c_dim=12, width=4).eval()
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 12)
    assert "mean" not in enc.state_dict()  # normalisation constants are not weights
    blocks = [m for m in enc.modules() if m.__class__.__name__ == "BasicBlock"]
    assert len(blocks) == 8  # ResNet18: [2, 2, 2, 2]
    assert enc.layer4[0].conv1.out_channels == 32  # width * 8


def test_pointnet_shape_and_permutation_invariance() -> None:
    enc = ResnetPointnet(c_dim=10, hidden=8, n_blocks=5)
    randomise_weights(enc)
    p = torch.rand(2, 300, 3)
    out = enc(p)
    assert out.shape == (2, 10)
    assert torch.allclose(enc(p[:, torch.randperm(300)]), out, atol=1e-5)


@pytest.mark.parametrize(("name", "stage1", "stage2"), [("onet", True, False), ("onet-pcl", False, True), ("doccnet", True, True)])
def test_registry_builds_stages(name: str, stage1: bool, stage2: bool) -> None:
    model = build_model(small_model_config(name)).eval()
    assert name in REGISTRY
    assert (model.stage1 is not None, model.stage2 is not None) == (stage1, stage2)
    if stage1:
        assert model(torch.rand(1, 7, 3), torch.rand(1, 3, 64, 64), stage=1).shape == (1, 7)
    if stage2:
        assert model(torch.rand(1, 7, 3), torch.rand(1, 300, 3), stage=2).shape == (1, 7)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="onet, onet-pcl, doccnet"):
        default_model_config("occnet")


def test_mismatched_code_sizes_rejected() -> None:
    with pytest.raises(ConfigError, match="decoder1.c_dim"):
        ModelConfig(name="onet", decoder1=DecoderConfig(c_dim=128))


def test_paper_sizes() -> None:
    model = build_model(default_model_config("doccnet"))
    assert model.stage1.decoder.fc_p.out_features == 256 and len(model.stage1.decoder.blocks) == 5
    assert model.stage1.encoder.fc.out_features == 256
    assert model.stage2.encoder.fc_c.out_features == 512 and model.stage2.encoder.fc_pos.out_features == 1024
    assert model.stage2.decoder.blocks[0].bn_0.conv_gamma.in_features == 512


def test_decoder_handles_no_points() -> None:
    dec = Decoder(c_dim=8, hidden=16, n_blocks=1).eval()
    with torch.no_grad():
        assert dec(torch.zeros(2, 0, 3), torch.randn(2, 8)).shape == (2, 0)
