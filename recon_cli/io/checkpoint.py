"""Checkpoints: one file ``{format_version, model, config, state_dict, extra}``.

Only plain Python values and tensors are stored, so the file loads with
``torch.load(..., weights_only=True)``; files are written atomically.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from recon_cli.config import from_dict, to_dict
from recon_cli.errors import CheckpointError, ConfigError
from recon_cli.io.atomic import atomic_write_bytes
from recon_cli.models import DOccNet, ModelConfig, build_model

FORMAT_VERSION = 1
_KEYS = ("format_version", "model", "config", "state_dict", "extra")


def checkpoint_dict(model: DOccNet, cfg: ModelConfig, *, extra: dict | None = None, half: bool = False) -> dict:
    """The plain dict stored in a checkpoint file (tensors on the CPU)."""
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value.clone()
    return {
        "format_version": FORMAT_VERSION,
        "model": cfg.name,
        "config": to_dict(cfg),
        "state_dict": state,
        "extra": dict(extra or {}),
    }


def save_checkpoint(
    path: str | Path, model: DOccNet, cfg: ModelConfig, *, extra: dict | None = None, half: bool = False
) -> None:
    """Write ``model`` (its state dict), ``cfg`` and ``extra`` to ``path`` atomically.

    ``half=True`` stores floating tensors as float16 (they load back as float32).
    ``extra`` must hold plain Python values and tensors only.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint_dict(model, cfg, extra=extra, half=half), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate the raw checkpoint dict (CheckpointError naming the file on problems)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("no such checkpoint file", path=path)
    if not path.is_file():
        raise CheckpointError("not a file", path=path)
    _check_container(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"truncated or corrupt checkpoint ({_one_line(exc)})", path=path) from None
    except pickle.UnpicklingError:
        raise CheckpointError(
            "checkpoint holds objects other than tensors and plain values; refusing to unpickle them "
            "(recon loads checkpoints with weights_only=True)",
            path=path,
        ) from None
    except Exception as exc:  # torch raises RuntimeError and others for damaged archives
        raise CheckpointError(f"truncated or corrupt checkpoint ({type(exc).__name__}: {_one_line(exc)})", path=path) from None
    if not isinstance(data, dict) or "format_version" not in data or "state_dict" not in data:
        raise CheckpointError("not a recon checkpoint (no format_version/state_dict)", path=path)
    if data["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"unsupported checkpoint format version {data['format_version']!r} (this recon reads {FORMAT_VERSION})",
            path=path,
        )
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise CheckpointError(f"checkpoint lacks {', '.join(missing)}", path=path)
    return data


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[DOccNet, ModelConfig, dict]:
    """Load a checkpoint: (model in eval mode on ``device``, its config, ``extra``)."""
    data = read_checkpoint(path)
    try:
        cfg = from_dict(ModelConfig, data["config"], where="config")
    except ConfigError as exc:
        raise CheckpointError(f"bad model config: {exc}", path=path) from None
    if cfg.name != data["model"]:
        raise CheckpointError(f"model name {data['model']!r} does not match config name {cfg.name!r}", path=path)
    model = build_model(cfg, initialize=False)  # every parameter is loaded below (strict)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items()}
    _check_finite(state, path)
    try:
        model.load_state_dict(state, strict=True, assign=True)  # adopt the loaded tensors (no copy)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not match the config: {_state_summary(model, state)}", path=path) from None
    model.eval().to(device)
    extra = data["extra"] if isinstance(data["extra"], dict) else {}
    return model, cfg, extra


def default_thresholds(extra: dict[str, Any]) -> dict[str, float]:
    """The surface thresholds a checkpoint was tuned for on validation: ``{"doccnet": p, "onet": p}``
    (``{"r2n2": p}`` for a voxel model)
    (occupancy probabilities, per model mode; absent keys fall back to 0.2)."""
    out: dict[str, float] = {}
    stored = extra.get("thresholds") if isinstance(extra, dict) else None
    if isinstance(stored, dict):
        for key in ("doccnet", "blend", "onet", "onet-pcl", "r2n2"):
            value = stored.get(key)
            if isinstance(value, (int, float)) and 0.0 < float(value) < 1.0:
                out[key] = float(value)
    return out


def default_model(extra: dict[str, Any]) -> str | None:
    """The model mode ``--model auto`` runs for a checkpoint: ``extra["default_model"]`` ("onet",
    "doccnet" or "blend"), chosen by measurement when the weights were made; None = all its stages."""
    value = extra.get("default_model") if isinstance(extra, dict) else None
    return value if value in ("onet", "doccnet", "blend") else None


def non_finite_tensors(tensors: dict[str, Any]) -> list[str]:
    """Names of the floating tensors in ``tensors`` holding NaN or infinite values."""
    return [name for name, value in tensors.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def _check_finite(state: dict[str, Any], path: Path) -> None:
    """CheckpointError when any weight is NaN or infinite (a diverged or damaged run)."""
    bad = non_finite_tensors(state)
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        raise CheckpointError(
            f"weights hold NaN or infinite values in {len(bad)} tensor(s): {', '.join(bad[:3])}{more} "
            "(a diverged or damaged training run?)", path=path)


def _check_container(path: Path) -> None:
    """Reject empty files, non-zip files and incomplete zip archives before unpickling."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint ({exc.strerror or exc})", path=path) from None
    if not head:
        raise CheckpointError("empty checkpoint file (truncated?)", path=path)
    if head != b"PK\x03\x04":
        raise CheckpointError("not a recon checkpoint (not a PyTorch zip archive)", path=path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError("truncated or corrupt checkpoint (incomplete zip archive)", path=path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # CRC of every member: catches damaged bytes inside the file
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"truncated or corrupt checkpoint ({_one_line(exc)})", path=path) from None
    if bad is not None:
        raise CheckpointError(f"corrupt checkpoint (checksum mismatch in {bad})", path=path)


def _one_line(exc: BaseException) -> str:
    """The first sentence of an exception message (torch's are long)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first.split(". ")[0].rstrip(".")


def _state_summary(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> str:
    """One line naming missing/unexpected keys and shape mismatches."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            if label == "shape mismatch":
                shown = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in keys[:3]]
            else:
                shown = keys[:3]
            parts.append(f"{len(keys)} {label}: {', '.join(shown)}{more}")
    return "; ".join(parts) or "load_state_dict failed"
