"""The learned mask network: EfficientNet-Lite0 trunk taps, letterboxing, training round trip, checkpoint errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon_cli.errors import CheckpointError
from recon_cli.io.masknet import (LITE_SIZE, TAP_CHANNELS, build_decoder, build_trunk, fold_batchnorm, letterbox,
                                  load_masknet, make_pool, predict, train)


def test_letterbox_fits_the_photo_and_pads_with_its_edges() -> None:
    rgb = np.zeros((50, 100, 3), np.uint8)
    rgb[0] = 200  # top row: the padding above repeats it
    square, (top, left, h, w) = letterbox(rgb)
    assert square.shape == (LITE_SIZE, LITE_SIZE, 3) and (left, w) == (0, LITE_SIZE) and h == LITE_SIZE // 2
    assert top == (LITE_SIZE - h) // 2 and (square[:top] == 200).all() and (square[-1] == 0).all()


def test_trunk_taps_have_the_documented_strides_and_channels() -> None:
    import torch

    with torch.inference_mode():
        feats = build_trunk()(torch.rand(1, 3, LITE_SIZE, LITE_SIZE))
    assert [f.shape[1] for f in feats] == list(TAP_CHANNELS)
    assert [LITE_SIZE // f.shape[-1] for f in feats] == [4, 8, 16, 32]


def test_pool_masks_match_the_photos() -> None:
    photos, masks = make_pool(3, seed=1, categories=["chair"])
    assert photos.shape == (3, LITE_SIZE, LITE_SIZE, 3) and masks.shape == (3, LITE_SIZE, LITE_SIZE)
    assert all(0.01 < m.mean() < 0.9 for m in masks)
    # the object differs from the background where the mask says so
    assert all(np.abs(p[m].astype(float).mean(0) - p[~m].astype(float).mean(0)).max() > 1 for p, m in zip(photos, masks))


def test_train_save_load_predict(tmp_path: Path) -> None:
    out, log = tmp_path / "m.pt", tmp_path / "log.jsonl"
    info = train(out, pool=6, steps=3, batch=2, width=8, val_share=0.34, log=log, save_every=2)
    assert out.is_file() and info["steps"] == 3 and "val_iou" in info["history_tail"][-1]
    assert log.read_text().count("\n") == 1
    prob = predict(np.zeros((30, 40, 3), np.uint8), out)
    assert prob.shape == (30, 40) and prob.dtype == np.float32 and np.isfinite(prob).all()
    assert 0 <= prob.min() <= prob.max() <= 1
    # test-time augmentation: the logits of two scales averaged
    from scipy.special import logit

    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    both = predict(rgb, out, sizes=(LITE_SIZE, 288))
    assert both.shape == (40, 30)
    assert np.allclose(logit(both), (logit(predict(rgb, out)) + logit(predict(rgb, out, sizes=(288,)))) / 2, atol=1e-3)
    import torch

    with torch.inference_mode():  # logits at stride 4 of the 224-px input
        logits = build_decoder(8).eval()(build_trunk()(torch.rand(1, 3, LITE_SIZE, LITE_SIZE)))
    assert logits.shape == (1, LITE_SIZE // 4, LITE_SIZE // 4)


def test_batchnorm_folding_keeps_the_outputs() -> None:
    """Inference folds every BatchNorm of the trunk and the decoder into the convolution before it."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    trunk, decoder = build_trunk(), build_decoder(8)
    for m in decoder.modules():  # statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    decoder.eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.inference_mode():
        before = decoder(trunk(x))
        after = fold_batchnorm(decoder)(fold_batchnorm(trunk)(x))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [*trunk.modules(), *decoder.modules()])
    assert torch.allclose(before, after, atol=1e-4)


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    import torch

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load the mask network"):
        load_masknet(str(bad))
    torch.save({"format": 1, "kind": "masknet", "width": 8, "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="not a mask-network checkpoint"):
        load_masknet(str(tmp_path / "old.pt"))
    good = tmp_path / "good.pt"
    train(good, pool=4, steps=1, batch=2, width=8, val_share=0.0)
    ckpt = torch.load(good, weights_only=True)
    ckpt["trunk_sha256"] = "0" * 64
    torch.save(ckpt, tmp_path / "other-trunk.pt")
    with pytest.raises(CheckpointError, match="other EfficientNet-Lite0 weights"):
        load_masknet(str(tmp_path / "other-trunk.pt"))


def test_shipped_weights_load() -> None:
    from recon_cli.io.masknet import default_masknet_path

    path = default_masknet_path()
    if path is None:
        pytest.skip("no mask-network weights installed")
    trunk, decoder = load_masknet(str(path))
    assert sum(p.numel() for p in decoder.parameters()) < 200_000
