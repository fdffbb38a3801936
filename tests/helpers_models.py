"""Tiny random-weight checkpoints for tests (import as ``from helpers_models import make_checkpoint``)."""

from __future__ import annotations

from pathlib import Path

import torch

from recon_cli.io.checkpoint import save_checkpoint
from recon_cli.models import DOccNet, build_model, default_model_config, small_model_config
from recon_cli.models.decoder import Decoder

#: Radius of the sphere-like occupancy field of ``nonempty=True`` models.
BLOB_RADIUS = 0.3


def make_blob_decoder(decoder: Decoder, radius: float = BLOB_RADIUS, sharpness: float = 40.0) -> None:
    """Set ``decoder`` weights so its logits are ``sharpness * (radius**2 - |p|**2)``-like (a sphere).

    The first hidden units carry x, y, z; ResNet blocks add (relu(x) ** 2-free) piecewise-linear
    terms |x| = relu(x) + relu(-x) so the field is ``radius - |p|_1``-shaped: positive near the
    centre, negative outside, independent of the code.
    """
    h = decoder.fc_p.out_features
    if h < 6:
        raise ValueError("blob decoder needs hidden >= 6")
    with torch.no_grad():
        for p in decoder.parameters():
            p.zero_()
        for m in decoder.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
        # hidden units 0..5 = +x, -x, +y, -y, +z, -z
        for axis in range(3):
            decoder.fc_p.weight[2 * axis, axis] = 1.0
            decoder.fc_p.weight[2 * axis + 1, axis] = -1.0
        for block in decoder.blocks:
            for bn in (block.bn_0, block.bn_1):
                bn.conv_gamma.bias.fill_(1.0)
        decoder.bn.conv_gamma.bias.fill_(1.0)
        # relu(+x) + relu(-x) = |x|; logit = sharpness * (radius - |x| - |y| - |z|) * scale
        decoder.fc_out.weight[0, :6] = -sharpness
        decoder.fc_out.bias.fill_(sharpness * radius * 1.5)


def make_checkpoint(
    path: str | Path, name: str = "doccnet", *, small: bool = True, seed: int = 0, nonempty: bool = False
) -> Path:
    """Write a random-weight checkpoint of model ``name`` to ``path`` and return the path.

    ``small`` uses tiny widths (fast tests); ``nonempty`` overwrites the decoders so the
    model yields a closed blob (an octahedron-like shape of radius ~0.45) for any input.
    """
    torch.manual_seed(seed)
    cfg = small_model_config(name) if small else default_model_config(name)
    model: DOccNet = build_model(cfg).eval()
    if nonempty:
        for stage in (model.stage1, model.stage2):
            if stage is not None:
                make_blob_decoder(stage.decoder)
    path = Path(path)
    save_checkpoint(path, model, cfg, extra={"note": "random weights for tests", "seed": seed})
    return path
