"""Benchmark of `recon data synth`: models per minute, generation + full dataset writing.

Usage: python benchmarks/bench_synth.py [--per-category 8] [--workers 2] [--keep DIR]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the dataset here and keep it")
    args = parser.parse_args()

    from recon_cli.data.categories import SYNSETS
    from recon_cli.data.synth import generate, synth_dataset

    start = time.perf_counter()
    n_gen = 0
    faces = []
    for name in SYNSETS.values():
        for seed in range(args.per_category):
            faces.append(len(generate(name, 10_000 + seed).faces))
            n_gen += 1
    gen_s = (time.perf_counter() - start) / n_gen

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        start = time.perf_counter()
        report = synth_dataset(root, per_category=args.per_category, seed=args.seed, workers=args.workers,
                               overwrite=True)
        wall = time.perf_counter() - start
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    n = len(report.results)
    failed = sum(1 for r in report.results if not r.ok)
    per_model_cpu = sum(r.seconds for r in report.results) / max(n, 1)
    doc = {
        "benchmark": "synth",
        "models": n,
        "failed": failed,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 2),
        "models_per_minute": round(60 * n / wall, 1),
        "seconds_per_model_per_worker": round(per_model_cpu, 3),
        "generate_seconds_per_model": round(gen_s, 4),
        "mean_faces": round(sum(faces) / len(faces), 1),
        "projected_minutes_for_1000": round(1000 * wall / n / 60, 2),
        "target_minutes_for_1000": 15,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
