"""Benchmark of `recon data synth`: models per minute, generation + full dataset writing.

Usage: python -m benchmarks.bench_synth [--quick] [--per-category 8] [--workers 2] [--keep DIR]
(or `python -m benchmarks --only synth`)
Prints one JSON document. Target (issue 3): 1000 models in <= 15 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def run(quick: bool = False, *, per_category: int = 8, workers: int = 2, seed: int = 0,
        keep: Path | None = None) -> dict:
    """Generate ``per_category`` models of every category, then write them as a dataset (``quick``:
    one model of two categories, a smoke test)."""
    from recon_cli.data.categories import SYNSETS
    from recon_cli.data.synth import generate, synth_dataset

    names = list(SYNSETS.values())
    synsets = None
    if quick:
        per_category, names, synsets = 1, names[:2], list(SYNSETS)[:2]
    start = time.perf_counter()
    faces = [len(generate(name, 10_000 + i).faces) for name in names for i in range(per_category)]
    gen_s = (time.perf_counter() - start) / len(faces)

    root = keep or Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        start = time.perf_counter()
        report = synth_dataset(root, per_category=per_category, categories=synsets, seed=seed, workers=workers,
                               overwrite=True)
        wall = time.perf_counter() - start
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    n = len(report.results)
    failed = sum(1 for r in report.results if not r.ok)
    per_model_cpu = sum(r.seconds for r in report.results) / max(n, 1)
    return {
        "benchmark": "synth",
        "models": n,
        "failed": failed,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 2),
        "models_per_minute": round(60 * n / wall, 1),
        "seconds_per_model_per_worker": round(per_model_cpu, 3),
        "generate_seconds_per_model": round(gen_s, 4),
        "mean_faces": round(sum(faces) / len(faces), 1),
        "projected_minutes_for_1000": round(1000 * wall / n / 60, 2),
        "target_minutes_for_1000": 15,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one model of two categories (smoke test)")
    parser.add_argument("--keep", type=Path, default=None, help="write the dataset here and keep it")
    args = parser.parse_args()
    doc = run(args.quick, per_category=args.per_category, workers=args.workers, seed=args.seed, keep=args.keep)
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
