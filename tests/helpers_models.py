"""Tiny random-weight checkpoints for tests (import as ``from helpers_models import make_checkpoint``)."""

from __future__ import annotations

from pathlib import Path

import torch

from recon_cli.io.checkpoint import save_checkpoint
from recon_cli.models import DOccNet, build_model, default_model_config, small_model_config
from recon_cli.models.synthetic import BLOB_RADIUS, make_blob_decoder

__all__ = ["BLOB_RADIUS", "make_blob_decoder", "make_checkpoint", "randomise_weights"]


def make_checkpoint(
    path: str | Path, name: str = "doccnet", *, small: bool = True, seed: int = 0, nonempty: bool = False,
    thresholds: dict[str, float] | None = None, default_model: str | None = None,
) -> Path:
    """Write a random-weight checkpoint of model ``name`` to ``path`` and return the path.

    ``small`` uses tiny widths (fast tests); ``nonempty`` overwrites the decoders so the
    model yields a closed, roughly round blob of radius ~BLOB_RADIUS for any input.
    """
    torch.manual_seed(seed)
    cfg = small_model_config(name) if small else default_model_config(name)
    model: DOccNet = build_model(cfg).eval()
    if nonempty:
        for stage in (model.stage1, model.stage2):
            if stage is not None:
                make_blob_decoder(stage.decoder)
    path = Path(path)
    extra = {"note": "random weights for tests", "seed": seed}
    if thresholds is not None:
        extra["thresholds"] = dict(thresholds)
    if default_model is not None:
        extra["default_model"] = default_model
    save_checkpoint(path, model, cfg, extra=extra)
    return path


def randomise_weights(module: torch.nn.Module, seed: int = 0) -> None:
    """Give every parameter and BatchNorm statistic a non-trivial random value (no identity layers)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
