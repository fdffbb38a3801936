"""Per-category stage-1 IoU of checkpoints, overall and near the surface (thin parts).

For every model of ``--splits`` (view 0, as validation does): stage-1 logits
on ``--points`` of points.npz (a fixed subsample), IoU at ``--threshold``
against the stored labels; and the same IoU restricted to the points within
``--band`` of the surface (nearest pointcloud.npz sample), where thin parts
(chair and table legs, lamp stems) make up most of the volume. Means per
category and over models, per checkpoint, as one JSON document.

`python -m benchmarks.train_categories --ckpt a=runs/a/last.pt --ckpt b=runs/b/last.pt --data ROOT -o out.json`
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


def evaluate(ckpt: Path, root: Path, splits: Sequence[str], *, n_points: int, band: float,
             threshold: float) -> dict[str, Any]:
    """Per-model and per-category IoU (all points, and within ``band`` of the surface)."""
    import torch
    from scipy.spatial import cKDTree

    from recon_cli.data.layout import load_occupancy, load_pointcloud
    from recon_cli.data.shapenet import ShapeNetDataset, load_view
    from recon_cli.io.checkpoint import load_checkpoint

    model, cfg, _ = load_checkpoint(ckpt, device="cpu")
    model.eval()
    stage = model.stage(1)
    size = cfg.image_encoder.image_size
    logit_thr = math.log(threshold / (1 - threshold))
    per_cat: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"iou": [], "iou_band": []})
    names: dict[str, str] = {}
    for split in splits:
        ds = ShapeNetDataset(root, split, with_image=False, with_pointcloud=False)
        names.update({s: m.get("name", s) for s, m in ds.metadata.items()})
        for synset, model_id in ds.models:
            model_dir = root / synset / model_id
            pts, occ = load_occupancy(model_dir)
            pick = np.random.default_rng([0, len(model_id)]).choice(len(pts), min(n_points, len(pts)), replace=False)
            pts, occ = pts[pick], occ[pick]
            surface, _ = load_pointcloud(model_dir)
            dist, _ = cKDTree(surface).query(pts)
            near = dist < band
            with torch.no_grad():
                c = stage.encode(load_view(model_dir, 0, size=size)[None])
                logits = stage.decode(torch.from_numpy(pts)[None], c)[0].numpy()
            pred = logits > logit_thr
            per_cat[synset]["iou"].append(_iou(pred, occ))
            per_cat[synset]["iou_band"].append(_iou(pred[near], occ[near]))
    categories = {names.get(s, s): {k: round(float(np.mean(v)), 4) for k, v in d.items()} | {"models": len(d["iou"])}
                  for s, d in sorted(per_cat.items())}
    all_iou = [x for d in per_cat.values() for x in d["iou"]]
    all_band = [x for d in per_cat.values() for x in d["iou_band"]]
    return {"checkpoint": str(ckpt), "categories": categories,
            "mean_iou": round(float(np.mean(all_iou)), 4), "mean_iou_band": round(float(np.mean(all_band)), 4),
            "models": len(all_iou)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", action="append", required=True, help="LABEL=CHECKPOINT (repeatable)")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--splits", default="val,test")
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--band", type=float, default=0.02)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("-o", "--out", required=True, type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    doc = {"splits": args.splits, "points": args.points, "band": args.band, "threshold": args.threshold,
           "results": {}}
    for item in args.ckpt:
        label, _, path = item.partition("=")
        doc["results"][label] = evaluate(Path(path), args.data, args.splits.split(","), n_points=args.points,
                                         band=args.band, threshold=args.threshold)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: (v["mean_iou"], v["mean_iou_band"]) for k, v in doc["results"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
