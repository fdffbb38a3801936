"""Metrics: seconds to score one model with the published protocol, 100k points each way.

A marching-cubes mesh on a 129^3 lattice (as `recon reconstruct` makes at standard quality) is
scored against 100k occupancy points and 100k surface points with normals. Timed parts: the
inside test for IoU, surface sampling, the two nearest-neighbour queries with normal consistency
and F-scores, and the whole `score_mesh` call (best and median of several repeats; target < 1 s
on the 2-core development machine).

`python -m benchmarks.bench_metrics [--quick]`
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def torus_sdf(points: np.ndarray, major: float, minor: float) -> np.ndarray:
    """Signed distance to a torus around the y axis (negative inside)."""
    ring = np.sqrt(points[..., 0] ** 2 + points[..., 2] ** 2) - major
    return np.sqrt(ring**2 + points[..., 1] ** 2) - minor


def lattice_mesh(major: float, minor: float, res: int) -> Any:
    """Marching cubes of the torus on a res^3 lattice of the [-0.55, 0.55]^3 cube."""
    import mcubes
    import trimesh

    axis = 1.1 * (np.arange(res) / (res - 1) - 0.5)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    verts, faces = mcubes.marching_cubes(-torus_sdf(grid, major, minor), 0.0)
    return trimesh.Trimesh(1.1 * (verts / (res - 1) - 0.5), faces, process=False)


def run(quick: bool) -> dict[str, Any]:
    """Time the parts of one model's scoring; the document of this benchmark."""
    from benchmarks.run import time_call
    from recon_cli.data.inside import inside_mask
    from recon_cli.metrics import sample_surface, score_mesh, surface_scores

    n, repeats = (10_000, 1) if quick else (100_000, 5)
    rng = np.random.default_rng(0)
    gt_points, gt_normals = sample_surface(lattice_mesh(0.30, 0.12, 129 if quick else 257), n, seed=1)
    gt_points, gt_normals = gt_points.astype(np.float16), gt_normals.astype(np.float16)  # as stored
    occ_points = ((rng.random((n, 3)) - 0.5) * 1.1).astype(np.float16).astype(np.float32)
    occ = torus_sdf(occ_points, 0.30, 0.12) < 0
    pred = lattice_mesh(0.31, 0.115, 65 if quick else 129)
    pts, nrm = sample_surface(pred, n, seed=0)
    scores: list[Any] = []

    def whole() -> None:
        scores[:] = [score_mesh(pred, occ_points=occ_points, occ=occ, gt_points=gt_points, gt_normals=gt_normals,
                                seed=0, n_samples=n)[0]]

    parts = {
        "inside_test": time_call(lambda: inside_mask(pred, occ_points), repeats=repeats),
        "sample_surface": time_call(lambda: sample_surface(pred, n, seed=0), repeats=repeats),
        "nearest_neighbours": time_call(lambda: surface_scores(pts, nrm, gt_points, gt_normals), repeats=repeats),
        "total": time_call(whole, repeats=repeats),
    }
    return {
        "points_each_way": n,
        "pred_faces": int(len(pred.faces)),
        "pred_watertight": bool(pred.is_watertight),
        "seconds_best": {k: round(v["best"], 4) for k, v in parts.items()},
        "seconds_median": {k: round(v["median"], 4) for k, v in parts.items()},
        "target_seconds": 1.0,
        "scores": {k: float(f"{v:.5g}") for k, v in scores[0].as_dict().items()},
    }


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
