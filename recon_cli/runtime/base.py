"""The Backend protocol: what extraction and reconstruction need from a runtime.

Torch tensors go in and out; the torch and ONNX runtimes both implement it, so
:class:`recon_cli.pipeline.Reconstructor` runs the same code on either.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Backend(Protocol):
    """A model runtime. ``device`` is where the tensors handed to it should live."""

    has_stage1: bool
    has_stage2: bool
    device: torch.device
    image_size: int
    n_input_points: int

    def encode_image(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) RGB in [0, 1] on white -> codes (B, c1)."""
        ...

    def encode_points(self, points: Tensor) -> Tensor:
        """points (B, P, 3) in the normalised frame -> codes (B, c2)."""
        ...

    def decode(self, stage: int, points: Tensor, c: Tensor) -> Tensor:
        """points (B, N, 3), codes (B, c) -> occupancy logits (B, N) of ``stage`` (1 or 2)."""
        ...


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU raises InputError."""
    from recon_cli.errors import InputError

    if isinstance(device, torch.device):
        return device
    name = device.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA GPU is available")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {device!r} (use auto, cpu or cuda)") from exc
