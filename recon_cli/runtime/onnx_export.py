"""Export a D-OccNet to ONNX: image encoder, point encoder and the decoder of each stage.

The output folder holds one ``.onnx`` file per network the model has plus
``recon_onnx.json`` (the manifest: model config, input sizes, file names,
format version). The folder is written atomically: everything goes to a
temporary sibling folder that is renamed into place at the end, so a reader
never sees half an export.

Decoders are exported in their eval form: every conditional batch norm is an
affine map computed once per shape from the code ``c`` (built from the
parameters a checkpoint stores, not from the torch runtime's private fused
path), linear layers keep constant weights that onnxruntime pre-packs, and
the point count stays a dynamic axis. Folding the second CBN of each block
into ``fc_0`` (a per-shape weight, ``DecoderExport(fold=True)``) measured the
same speed on onnxruntime/CPU, so the simpler graph is exported.
Uses the TorchScript-based exporter (``dynamo=False``), which needs no extra
package.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from recon_cli.errors import InputError

#: Version of the folder layout / manifest; readers reject other versions.
ONNX_FORMAT_VERSION = 1
MANIFEST_NAME = "recon_onnx.json"
DEFAULT_OPSET = 17

#: network -> file name inside the export folder.
FILES: dict[str, str] = {
    "image_encoder": "image_encoder.onnx",
    "point_encoder": "point_encoder.onnx",
    "decoder1": "decoder1.onnx",
    "decoder2": "decoder2.onnx",
}


def _cbn_affine(cbn: nn.Module, c: Tensor) -> tuple[Tensor, Tensor]:
    """Eval-mode conditional batch norm as ``x * scale + shift``: c (B, C) -> (B, 1, F) each.

    Uses only the parameters a checkpoint stores (``bn`` running statistics,
    ``conv_gamma``, ``conv_beta``), not the torch runtime's private fused path.
    """
    inv = torch.rsqrt(cbn.bn.running_var + cbn.bn.eps)  # (F,)
    scale = cbn.conv_gamma(c) * inv  # (B, F)
    shift = cbn.conv_beta(c) - cbn.bn.running_mean * scale
    return scale.unsqueeze(1), shift.unsqueeze(1)


class DecoderExport(nn.Module):
    """Eval-mode decoder as one graph: p (B, N, 3), c (B, C) -> logits (B, N).

    ``fold=True`` folds the second CBN of each block into ``fc_0`` (a per-shape
    (B, H, H) weight); ``fold=False`` keeps every linear layer's weight constant
    (onnxruntime pre-packs constant weights) and applies the CBN as a
    per-shape scale and shift.
    """

    def __init__(self, decoder: nn.Module, *, fold: bool = False) -> None:
        super().__init__()
        self.decoder = decoder
        self.fold = fold
        self.eval()

    def forward(self, p: Tensor, c: Tensor) -> Tensor:
        """p (B, N, 3), c (B, C) -> logits (B, N)."""
        dec = self.decoder
        net = dec.fc_p(p)  # (B, N, H)
        for block in dec.blocks:
            s0, t0 = _cbn_affine(block.bn_0, c)
            s1, t1 = _cbn_affine(block.bn_1, c)
            a = torch.relu(net * s0 + t0)
            if self.fold:
                w0 = block.fc_0.weight.t().unsqueeze(0) * s1  # (B, H, H)
                h = torch.relu(torch.matmul(a, w0) + (block.fc_0.bias * s1 + t1))
            else:
                h = torch.relu(block.fc_0(a) * s1 + t1)
            net = net + block.fc_1(h)
        s_out, t_out = _cbn_affine(dec.bn, c)
        return dec.fc_out(torch.relu(net * s_out + t_out)).squeeze(-1)


def _export(module: nn.Module, args: tuple[Tensor, ...], path: Path, *, input_names: list[str],
            dynamic_axes: dict[str, dict[int, str]], opset: int) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer/deprecation chatter; the parity tests check the result
        torch.onnx.export(
            module, args, str(path), input_names=input_names, output_names=[_output_name(input_names)],
            dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )


def _output_name(input_names: list[str]) -> str:
    return "logits" if "p" in input_names else "c"


def manifest_for(cfg: Any, files: dict[str, str], *, opset: int,
                 thresholds: dict[str, float] | None = None, default_model: str | None = None) -> dict[str, Any]:
    """The ``recon_onnx.json`` document for model config ``cfg``."""
    from recon_cli import __version__
    from recon_cli.config import to_dict

    return {
        "format_version": ONNX_FORMAT_VERSION,
        "model": cfg.name,
        "image_size": cfg.image_encoder.image_size,
        "n_input_points": cfg.n_input_points,
        "c_dim1": cfg.decoder1.c_dim if cfg.has_stage1 else None,
        "c_dim2": cfg.decoder2.c_dim if cfg.has_stage2 else None,
        "has_stage1": cfg.has_stage1,
        "has_stage2": cfg.has_stage2,
        "files": files,
        "opset": opset,
        "inputs": {"image_encoder": ["images"], "point_encoder": ["points"], "decoder1": ["p", "c"],
                   "decoder2": ["p", "c"]},
        "outputs": {"image_encoder": "c", "point_encoder": "c", "decoder1": "logits", "decoder2": "logits"},
        "config": to_dict(cfg),
        "thresholds": dict(thresholds or {}),
        "default_model": default_model,
        "recon_version": __version__,
        "torch_version": torch.__version__,
    }


_DECODER_AXES = {"p": {0: "batch", 1: "n_points"}, "c": {0: "batch"}, "logits": {0: "batch", 1: "n_points"}}


def _write_networks(model: nn.Module, cfg: Any, folder: Path, *, opset: int,
                    on_progress: Callable[[str], None] | None) -> dict[str, str]:
    files: dict[str, str] = {}
    jobs: list[tuple[str, nn.Module, tuple[Tensor, ...], list[str], dict[str, dict[int, str]]]] = []
    s = cfg.image_encoder.image_size
    if model.stage1 is not None:
        c1 = torch.randn(2, cfg.decoder1.c_dim)
        jobs.append(("image_encoder", model.stage1.encoder, (torch.rand(2, 3, s, s),), ["images"],
                     {"images": {0: "batch"}, "c": {0: "batch"}}))
        jobs.append(("decoder1", DecoderExport(model.stage1.decoder), (torch.rand(2, 64, 3) - 0.5, c1),
                     ["p", "c"], _DECODER_AXES))
    if model.stage2 is not None:
        c2 = torch.randn(2, cfg.decoder2.c_dim)
        jobs.append(("point_encoder", model.stage2.encoder, (torch.rand(2, cfg.n_input_points, 3) - 0.5,),
                     ["points"], {"points": {0: "batch", 1: "n_input_points"}, "c": {0: "batch"}}))
        jobs.append(("decoder2", DecoderExport(model.stage2.decoder), (torch.rand(2, 64, 3) - 0.5, c2),
                     ["p", "c"], _DECODER_AXES))
    for name, module, args, inputs, axes in jobs:
        if on_progress is not None:
            on_progress(name)
        _export(module, args, folder / FILES[name], input_names=inputs, dynamic_axes=axes, opset=opset)
        files[name] = FILES[name]
    return files


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished ``tmp`` folder onto ``out_dir`` (an earlier export there is replaced)."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    os.replace(out_dir, old / "dir")
    try:
        os.replace(tmp, out_dir)
    except OSError:
        os.replace(old / "dir", out_dir)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("output exists and is not a folder", path=out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise InputError(f"folder is not empty and holds no {MANIFEST_NAME}; refusing to replace it", path=out_dir)


def _check_exportable(model: nn.Module) -> None:
    """Fail before writing anything: a voxel model, the onnx package is missing, or the weights are not finite."""
    if getattr(getattr(model, "config", None), "is_voxel", False):
        raise InputError("an r2n2 (voxel) model: ONNX export covers the occupancy networks only; run it with "
                         "recon reconstruct --model r2n2")
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError as exc:
        raise InputError(f"export-onnx needs the onnx package ({exc}); install it with: "
                         "pip install 'recon-cli[onnx]'") from None
    bad = [name for name, value in model.state_dict().items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        raise InputError(f"the model's weights hold NaN or infinite values ({', '.join(bad[:3])}"
                         f"{' ...' if len(bad) > 3 else ''}); refusing to export them")


def export_onnx(model: nn.Module, out_dir: str | Path, *, opset: int = DEFAULT_OPSET,
                on_progress: Callable[[str], None] | None = None,
                thresholds: dict[str, float] | None = None, default_model: str | None = None) -> dict[str, Any]:
    """Export every network of ``model`` (a DOccNet) into ``out_dir``; return the manifest.

    ``out_dir`` must be absent, empty, or an earlier export (which is replaced).
    ``on_progress`` is called with each network's name before it is exported.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir)
    _check_exportable(model)
    cfg = model.config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp.", dir=out_dir.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual permissions
    was_training = model.training
    model.eval().cpu()
    try:
        files = _write_networks(model, cfg, tmp, opset=opset, on_progress=on_progress)
        manifest = manifest_for(cfg, files, opset=opset, thresholds=thresholds, default_model=default_model)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace_dir(tmp, out_dir)
    finally:
        model.train(was_training)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return manifest


def export_checkpoint(weights: str | Path, out_dir: str | Path, *, opset: int = DEFAULT_OPSET,
                      on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load checkpoint ``weights`` (CheckpointError naming it on problems) and :func:`export_onnx` it."""
    from recon_cli.io.checkpoint import default_model, default_thresholds, load_checkpoint

    model, _cfg, extra = load_checkpoint(weights, device="cpu")
    manifest = export_onnx(model, out_dir, opset=opset, on_progress=on_progress, thresholds=default_thresholds(extra),
                           default_model=default_model(extra))
    return manifest


def verify_export(model: nn.Module, out_dir: str | Path, *, n_points: int = 2048, batch: int = 2,
                  seed: int = 0) -> dict[str, float]:
    """Max absolute difference between torch and onnxruntime (CPU) outputs, per network,
    on random inputs (images in [0, 1], points in [-0.55, 0.55]^3)."""
    from recon_cli.runtime.onnx_backend import OnnxBackend
    from recon_cli.runtime.torch_backend import TorchBackend

    gen = torch.Generator().manual_seed(seed)
    ref = TorchBackend(model.eval().cpu(), device="cpu")
    ort = OnnxBackend(out_dir, device="cpu")
    points = (torch.rand(batch, n_points, 3, generator=gen) - 0.5) * 1.1  # (B, N, 3)
    diffs: dict[str, float] = {}
    if ref.has_stage1:
        s = ref.image_size
        images = torch.rand(batch, 3, s, s, generator=gen)
        c1 = ref.encode_image(images)
        diffs["image_encoder"] = float((c1 - ort.encode_image(images)).abs().max())
        diffs["decoder1"] = float((ref.decode(1, points, c1) - ort.decode(1, points, c1)).abs().max())
    if ref.has_stage2:
        cloud = torch.rand(batch, ref.n_input_points, 3, generator=gen) - 0.5
        c2 = ref.encode_points(cloud)
        diffs["point_encoder"] = float((c2 - ort.encode_points(cloud)).abs().max())
        diffs["decoder2"] = float((ref.decode(2, points, c2) - ort.decode(2, points, c2)).abs().max())
    bad = [name for name, value in diffs.items() if not math.isfinite(value)]
    if bad:
        raise InputError(f"the exported networks give NaN or infinite outputs ({', '.join(bad)}); "
                         "the export is not usable", path=out_dir)
    return diffs
