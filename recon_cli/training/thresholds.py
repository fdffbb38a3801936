"""Choose the surface threshold on validation and store it in the checkpoint (``recon tune-threshold``).

For each candidate probability t, on view 0 of every model of a split (or an
evenly spaced subset):

* ``onet``: IoU of stage-1 occupancy > t against the model's points.npz labels;
* ``doccnet``: the whole chain as at inference: the stage-1 mesh extracted at t
  (MISE, the 65^3 lattice of the intermediate mesh), its 300 points, stage 2's
  occupancy > t at the same points;
* ``blend``: the same chain, cut where the blend of the two stages' logits
  (:data:`recon_cli.pipeline.BLEND_STAGE1_WEIGHT`) crosses t's logit.

The best mean IoU per mode is written into the checkpoint as
``extra["thresholds"]`` (atomically; the rest of the file is unchanged), which
``recon reconstruct``, ``recon eval``, the Python API and ONNX exports then use
when no ``--threshold`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recon_cli.errors import DatasetError, InputError

CANDIDATES: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def tune_thresholds(weights: str | Path, root: str | Path, *, split: str = "val", limit: int = 0,
                    n_points: int = 20_000, candidates: Sequence[float] = CANDIDATES, threads: int | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Mean IoU per mode and candidate on ``split``; returns ``{"table": ..., "best": {...}, "models": n}``."""
    from recon_cli.data.layout import load_occupancy
    from recon_cli.data.shapenet import ShapeNetDataset, load_view
    from recon_cli.extract.grid import probability_to_logit
    from recon_cli.pipeline import BLEND_STAGE1_WEIGHT, ExtractOptions, Reconstructor
    from recon_cli.runtime.torch_backend import TorchBackend

    if not candidates or any(not 0.0 < t < 1.0 for t in candidates):
        raise InputError("threshold candidates must be probabilities strictly between 0 and 1")
    backend = TorchBackend.from_checkpoint(weights, threads=threads)
    if not backend.has_stage1:
        raise InputError("tune-threshold needs a model with an image stage", path=Path(weights))
    models = ShapeNetDataset(root, split, with_points=False, with_pointcloud=False).models
    if not models:
        raise DatasetError(f"the {split} split lists no models", path=Path(root))
    if limit and len(models) > limit:
        models = [models[int(i)] for i in np.linspace(0, len(models) - 1, limit).round()]
    modes = ["onet"] + (["doccnet", "blend"] if backend.has_stage2 else [])
    w = BLEND_STAGE1_WEIGHT
    sums = {m: np.zeros(len(candidates)) for m in modes}
    rng = np.random.default_rng(0)
    recs = {t: Reconstructor(backend, options=ExtractOptions(threshold=t, resolution0=32, upsampling_steps=1),
                             stages="1+2" if backend.has_stage2 else "1") for t in candidates}
    for n, (synset, model_id) in enumerate(models):
        model_dir = Path(root) / synset / model_id
        points, occ = load_occupancy(model_dir)
        pick = rng.choice(len(points), min(n_points, len(points)), replace=False)
        p = torch.from_numpy(points[pick])[None]
        gt = occ[pick]
        image = load_view(model_dir, 0, size=backend.image_size)[None]
        with torch.inference_mode():
            code1 = backend.encode_image(image)
            logit1 = backend.decode(1, p, code1)[0].numpy()
        for k, t in enumerate(candidates):
            level = probability_to_logit(t)
            sums["onet"][k] += _iou(logit1 > level, gt)
            if "doccnet" in modes:
                rec = recs[t].reconstruct_images(image)[0]
                if rec.points is None or len(rec.points) == 0:
                    continue  # an empty stage-1 mesh: IoU 0
                with torch.inference_mode():
                    code2 = backend.encode_points(torch.as_tensor(np.asarray(rec.points), dtype=torch.float32)[None])
                    logit2 = backend.decode(2, p, code2)[0].numpy()
                sums["doccnet"][k] += _iou(logit2 > level, gt)
                sums["blend"][k] += _iou(w * logit1 + (1.0 - w) * logit2 > level, gt)
        if on_progress is not None:
            on_progress(n + 1, len(models))
    table = {m: {f"{t:g}": float(sums[m][k] / len(models)) for k, t in enumerate(candidates)} for m in modes}
    best = {m: float(candidates[int(np.argmax(sums[m]))]) for m in modes}
    return {"split": split, "models": len(models), "table": table, "best": best}


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def write_thresholds(weights: str | Path, out: str | Path, thresholds: dict[str, float],
                     report: dict[str, Any] | None = None) -> Path:
    """Copy checkpoint ``weights`` to ``out`` (may be the same file) with ``extra["thresholds"]`` set."""
    import io

    from recon_cli.io.atomic import atomic_write_bytes
    from recon_cli.io.checkpoint import read_checkpoint

    data = read_checkpoint(weights)
    extra = dict(data.get("extra") or {})
    extra["thresholds"] = {k: float(v) for k, v in thresholds.items()}
    if report is not None:
        extra["threshold_tuning"] = {"split": report["split"], "models": int(report["models"]),
                                     "table": report["table"]}
    data["extra"] = extra
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return Path(out)
