"""Mask IoU and speed of each segmentation method on a photo-like test set (`recon data photos`).

Usage: python -m benchmarks.segmentation SET_DIR [-o results.json] [--per-image FILE] [--methods border,grabcut,auto]

For every image of SET_DIR/index.json and every method, runs
``recon_cli.io.segment.segment`` on the photo, thresholds the soft mask at 0.5
and scores it against the true mask (IoU; a refusal "no confident object"
scores 0 and is counted). Reports per method: mean and median IoU, the mean
over the 10% hardest backgrounds (the images with the lowest IoU averaged over
all methods: one subset for every method) and over the method's own worst 10%,
refusals, mean IoU per background family, and seconds per image (median and
mean: wall clock on this machine with its current load, recorded with
``os.getloadavg``, and CPU time of the process, which a busy machine inflates less).
Prints one JSON document (and writes it with -o). Not part of `python -m benchmarks`:
it needs a photo set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def evaluate(set_dir: Path, methods: list[str], limit: int | None = None, stride: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summary document and per-image rows."""
    from recon_cli.errors import InputError
    from recon_cli.io.segment import _downscale, _lab, border_fit, segment, MASK_SIZE

    index = json.loads((set_dir / "index.json").read_text())
    entries = index["images"][::stride][:limit] if limit else index["images"][::stride]
    rows: list[dict[str, Any]] = []
    try:  # warm-up (imports)
        segment(np.asarray(Image.open(set_dir / entries[0]["image"]).convert("RGB")), "grabcut")
    except InputError:
        pass
    load_before = os.getloadavg()
    for entry in entries:
        rgb = np.asarray(Image.open(set_dir / entry["image"]).convert("RGB"))
        truth = np.asarray(Image.open(set_dir / entry["mask"])) > 127
        fit = border_fit(_lab(_downscale(rgb, MASK_SIZE)[0]))
        row: dict[str, Any] = {"image": entry["image"], "family": entry["family"], "border_noise": round(fit.low, 2),
                               "border_inliers": round(fit.inliers, 3)}
        for method in methods:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                result = segment(rgb, method)
                iou, used = _iou(result.alpha > 0.5, truth), result.method
            except InputError:
                iou, used = 0.0, "refused"
            row[method] = {"iou": round(iou, 4), "seconds": round(time.perf_counter() - start, 4),
                           "cpu_seconds": round(time.process_time() - cpu, 4), "used": used}
        rows.append(row)
    load_after = os.getloadavg()
    hardness = np.array([np.mean([r[m]["iou"] for m in methods]) for r in rows])
    n10 = max(1, int(round(0.1 * len(rows))))
    hardest = set(np.argsort(hardness, kind="stable")[:n10].tolist())
    summary: dict[str, Any] = {}
    for method in methods:
        ious = np.array([r[method]["iou"] for r in rows])
        secs = [r[method]["seconds"] for r in rows]
        cpu_secs = [r[method]["cpu_seconds"] for r in rows]
        families: dict[str, list[float]] = {}
        for r in rows:
            families.setdefault(r["family"], []).append(r[method]["iou"])
        summary[method] = {
            "mean_iou": round(float(ious.mean()), 4),
            "median_iou": round(float(np.median(ious)), 4),
            "hardest_10pct_backgrounds_iou": round(float(ious[sorted(hardest)].mean()), 4),
            "own_worst_10pct_iou": round(float(np.sort(ious)[:n10].mean()), 4),
            "refused": int(sum(r[method]["used"] == "refused" for r in rows)),
            "seconds_per_image_median": round(statistics.median(secs), 4),
            "seconds_per_image_mean": round(statistics.mean(secs), 4),
            "cpu_seconds_per_image_median": round(statistics.median(cpu_secs), 4),
            "cpu_seconds_per_image_mean": round(statistics.mean(cpu_secs), 4),
            "per_family_iou": {f: round(float(np.mean(v)), 4) for f, v in sorted(families.items())},
        }
        if method == "auto":
            used = [r[method]["used"] for r in rows]
            summary[method]["chose"] = {u: used.count(u) for u in sorted(set(used))}
    doc = {
        "benchmark": "segmentation",
        "set": str(set_dir),
        "images": len(rows),
        "set_split": index.get("split"),
        "families": {f: sum(r["family"] == f for r in rows) for f in sorted({r["family"] for r in rows})},
        "hardest_10pct_families": {f: sum(rows[i]["family"] == f for i in hardest)
                                   for f in sorted({rows[i]["family"] for i in hardest})},
        "methods": summary,
        "machine": {"cpu": platform.processor() or platform.machine(), "logical_cores": os.cpu_count(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after]},
    }
    return doc, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=None)
    parser.add_argument("--per-image", type=Path, default=None, help="also write the per-image rows (JSON)")
    parser.add_argument("--methods", default="border,grabcut,auto")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--stride", type=int, default=1, help="use every n-th image (quick checks)")
    args = parser.parse_args(argv)
    doc, rows = evaluate(args.set_dir, [m for m in args.methods.split(",") if m], args.limit, args.stride)
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.per_image is not None:
        args.per_image.write_text(json.dumps(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
