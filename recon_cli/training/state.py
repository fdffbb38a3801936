"""Checkpoint/resume state: RNG states and the trainer's last.pt / best.pt I/O."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recon_cli.config import to_dict
from recon_cli.errors import CheckpointError
from recon_cli.training.schedule import Phase

# ------------------------------------------------------------------------ RNG states


def rng_state() -> dict[str, Any]:
    """Global RNG states as plain values and tensors (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": _plain(random.getstate()),
        "numpy": [str(kind), [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value



# ------------------------------------------------------------------ trainer checkpoints


class CheckpointMixin:
    """``Trainer`` methods that write and read ``last.pt`` / ``best.pt``."""

    def save(self, name: str, model: nn.Module, optimizer: torch.optim.Optimizer | None, phase: Phase) -> Path:
        """Write ``out_dir/name`` (rank 0). Without ``optimizer`` (best.pt) no optimizer/RNG state is kept."""
        from recon_cli.io.checkpoint import save_checkpoint

        path = self.out / name
        if self.info.is_main:
            extra = {
                "step": int(self.step),
                "phase": phase.name,
                "best_iou": None if self.best_iou is None else float(self.best_iou),
                "best_step": self.best_step,
                "phase_best": {k: float(v) for k, v in self.phase_best.items()},
                "last_val": self.last_val,
                "world_size": int(self.info.world_size),
                "train_config": to_dict(self.config),
            }
            if optimizer is not None:
                extra.update(optimizer=optimizer.state_dict(), rng=rng_state())
            save_checkpoint(path, model, self.config.model, extra=extra)
            self.emit({"type": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def load_init_weights(self, model: nn.Module, path: Path) -> None:
        """Start a new run from the weights of ``path`` (``init_weights``): same model config, new optimiser."""
        from recon_cli.io.checkpoint import load_checkpoint

        loaded, cfg, _ = load_checkpoint(path, device="cpu")
        mine, theirs = _architecture(to_dict(self.config.model)), _architecture(to_dict(cfg))
        if mine != theirs:
            differ = sorted(_differences(mine, theirs))
            raise CheckpointError("init_weights: its model config differs from this run's "
                                  f"({', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''})", path=path)
        model.load_state_dict(loaded.state_dict())
        self.emit({"type": "message", "text": f"model weights initialised from {path}"})

    def load_resume(self, model: nn.Module) -> dict[str, Any] | None:
        from recon_cli.io.checkpoint import load_checkpoint

        path = self.out / "last.pt"
        if not path.is_file():
            return None
        loaded, cfg, extra = load_checkpoint(path, device="cpu")
        if to_dict(cfg) != to_dict(self.config.model):
            raise CheckpointError("model config differs from the run being resumed", path=path)
        missing = [k for k in ("step", "optimizer", "rng") if k not in extra]
        if missing:
            raise CheckpointError(f"not a resumable training checkpoint (missing {', '.join(missing)})", path=path)
        model.load_state_dict(loaded.state_dict())
        self.step = int(extra["step"])
        self.best_iou = extra.get("best_iou")
        self.best_step = extra.get("best_step")
        self.phase_best = dict(extra.get("phase_best") or {})
        self.last_val = extra.get("last_val")
        set_rng_state(extra["rng"])
        return extra


#: Model settings that only govern training (which trunk units train, where their first weights
#: came from): a run may start from weights trained with other values of these.
TRAINING_ONLY = (("image_encoder", "trainable_blocks"), ("image_encoder", "init"))


def _architecture(model_config: dict[str, Any]) -> dict[str, Any]:
    """A model config dict without its :data:`TRAINING_ONLY` settings."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in model_config.items()}
    for section, key in TRAINING_ONLY:
        if isinstance(out.get(section), dict):
            out[section].pop(key, None)
    return out


def _differences(a: Any, b: Any, prefix: str = "model") -> list[str]:
    """Dotted keys where two nested config dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}.{key}")
        return out
    return [] if a == b else [prefix]
