"""Benchmark: seconds to score one model with the published protocol (prints JSON).

A marching-cubes mesh on a 129^3 lattice (as `recon reconstruct` makes at standard quality) is
scored against 100k occupancy points and 100k surface points with normals: 100k points each way.
Timed parts: the inside test for IoU, surface sampling, the two nearest-neighbour queries with
normal consistency and F-scores, and the whole `score_mesh` call. Median of --repeat runs.

    python benchmarks/bench_metrics.py [--repeat 5] [--samples 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import mcubes
import numpy as np
import trimesh

from recon_cli.metrics import sample_surface, score_mesh, surface_scores


def torus_sdf(points: np.ndarray, major: float, minor: float) -> np.ndarray:
    """Signed distance to a torus around the y axis (negative inside)."""
    ring = np.sqrt(points[..., 0] ** 2 + points[..., 2] ** 2) - major
    return np.sqrt(ring**2 + points[..., 1] ** 2) - minor


def lattice_mesh(major: float, minor: float, res: int) -> trimesh.Trimesh:
    """Marching cubes of the torus on a res^3 lattice of the [-0.55, 0.55]^3 cube."""
    axis = 1.1 * (np.arange(res) / (res - 1) - 0.5)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    verts, faces = mcubes.marching_cubes(-torus_sdf(grid, major, minor), 0.0)
    return trimesh.Trimesh(1.1 * (verts / (res - 1) - 0.5), faces, process=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100_000)
    args = parser.parse_args()
    n = args.samples
    rng = np.random.default_rng(0)
    gt_mesh = lattice_mesh(0.30, 0.12, 257)
    gt_points, gt_normals = sample_surface(gt_mesh, n, seed=1)
    occ_points = ((rng.random((n, 3)) - 0.5) * 1.1).astype(np.float16).astype(np.float32)
    occ = torus_sdf(occ_points, 0.30, 0.12) < 0
    pred = lattice_mesh(0.31, 0.115, 129)
    gt_points, gt_normals = gt_points.astype(np.float16), gt_normals.astype(np.float16)

    from recon_cli.data.inside import inside_mask

    def timed(fn) -> tuple[float, object]:
        start = time.perf_counter()
        value = fn()
        return time.perf_counter() - start, value

    parts: dict[str, list[float]] = {"inside_test": [], "sample_surface": [], "nearest_neighbours": [], "total": []}
    scores = None
    for i in range(args.repeat):
        parts["inside_test"].append(timed(lambda: inside_mask(pred, occ_points))[0])
        t, (pts, nrm) = timed(lambda: sample_surface(pred, n, seed=i))
        parts["sample_surface"].append(t)
        parts["nearest_neighbours"].append(timed(lambda: surface_scores(pts, nrm, gt_points, gt_normals))[0])
        t, (scores, _) = timed(lambda: score_mesh(pred, occ_points=occ_points, occ=occ, gt_points=gt_points,
                                                  gt_normals=gt_normals, seed=i, n_samples=n))
        parts["total"].append(t)
    doc = {
        "benchmark": "metrics_one_model",
        "points_each_way": n,
        "pred_faces": int(len(pred.faces)),
        "pred_watertight": bool(pred.is_watertight),
        "repeat": args.repeat,
        "seconds": {k: round(statistics.median(v), 4) for k, v in parts.items()},
        "target_seconds": 1.0,
        "scores": None if scores is None else {k: round(v, 5) for k, v in scores.as_dict().items()},
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
