"""Torch runtime: a DOccNet in eval mode on one device, behind the Backend protocol."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from recon_cli.models import DOccNet
from recon_cli.runtime.base import resolve_device


class TorchBackend:
    """Runs a :class:`DOccNet` (always in ``eval()`` mode, under ``torch.inference_mode``)."""

    def __init__(self, model: DOccNet, *, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        cfg = model.config
        self.config = cfg
        self.has_stage1 = model.stage1 is not None
        self.has_stage2 = model.stage2 is not None
        self.image_size = cfg.image_encoder.image_size
        self.n_input_points = cfg.n_input_points

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu") -> TorchBackend:
        """Load a checkpoint file (CheckpointError naming it on problems)."""
        from recon_cli.io.checkpoint import load_checkpoint

        dev = resolve_device(device)
        model, _cfg, _extra = load_checkpoint(path, device=dev)
        return cls(model, device=dev)

    @torch.inference_mode()
    def encode_image(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) in [0, 1] -> codes (B, c1)."""
        return self.model.stage(1).encode(images.to(self.device, torch.float32))

    @torch.inference_mode()
    def encode_points(self, points: Tensor) -> Tensor:
        """points (B, P, 3) -> codes (B, c2)."""
        return self.model.stage(2).encode(points.to(self.device, torch.float32))

    @torch.inference_mode()
    def decode(self, stage: int, points: Tensor, c: Tensor) -> Tensor:
        """points (B, N, 3), codes (B, c) -> logits (B, N)."""
        return self.model.stage(stage).decode(points.to(self.device, torch.float32), c.to(self.device))
