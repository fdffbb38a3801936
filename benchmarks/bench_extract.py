"""Extraction: MISE against a dense grid, and torch marching cubes against PyMCubes.

* MISE on analytic fields (sphere r=0.35, torus 0.3/0.1) at 32 + 2 steps:
  points evaluated vs the dense 129^3 lattice (2,146,689 points), rounds, time
  of the bookkeeping alone, and whether the sign grids are identical.
* MISE vs dense evaluation with the paper-size decoder (synthetic blob
  weights, real cost per point): extraction seconds of each (full run only).
* Marching cubes of a smooth field at 129^3 and 257^3: PyMCubes vs the torch
  implementation on the CPU (and on CUDA when present), best of several runs.

The CPU may be shared with other processes (load average recorded).

`python -m benchmarks.bench_extract [--quick]`
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def _sphere(points: np.ndarray) -> np.ndarray:
    return (0.35 - np.linalg.norm(points, axis=1)).astype(np.float32)


def _torus(points: np.ndarray) -> np.ndarray:
    ring = np.sqrt(points[:, 0] ** 2 + points[:, 2] ** 2) - 0.3
    return (0.1 - np.sqrt(ring**2 + points[:, 1] ** 2)).astype(np.float32)


def _best(fn: Any, repeats: int, sync: Any = None) -> tuple[float, float, Any]:
    times, out = [], None
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        out = fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), out


def mise_analytic(resolution0: int, steps: int, repeats: int) -> dict[str, Any]:
    """Points evaluated and bookkeeping time of MISE on analytic fields vs the dense lattice."""
    from recon_cli.extract import dense_grid, mise

    res = resolution0 * 2**steps
    out = {}
    for name, field in (("sphere", _sphere), ("torus", _torus)):
        best, median, result = _best(lambda f=field: mise(f, resolution0, steps, 0.0), repeats)
        dense_best, _, dense = _best(lambda f=field: dense_grid(f, res), repeats)
        out[name] = {
            "lattice": f"{res + 1}^3", "dense_points": (res + 1) ** 3, "mise_points": result.n_evaluated,
            "fraction": round(result.n_evaluated / (res + 1) ** 3, 4), "rounds": result.rounds,
            "mise_seconds_best": round(best, 4), "mise_seconds_median": round(median, 4),
            "dense_seconds_best_analytic_field": round(dense_best, 4),
            "sign_grid_identical": bool(np.array_equal(result.values > 0, dense > 0)),
        }
    return out


def mise_decoder(quick: bool) -> dict[str, Any]:
    """Extraction seconds with a real decoder: MISE vs a dense lattice (same marching cubes after)."""
    import torch

    from recon_cli.extract import dense_grid, grid_to_mesh, mise
    from recon_cli.models import Decoder
    from recon_cli.models.synthetic import make_blob_decoder

    hidden = 16 if quick else 256
    resolution0, steps = (8, 1) if quick else (32, 2)
    decoder = Decoder(c_dim=8, hidden=hidden, n_blocks=5).eval()
    make_blob_decoder(decoder)
    code = torch.zeros(1, 8)

    @torch.inference_mode()
    def field(points: np.ndarray) -> np.ndarray:
        return decoder(torch.from_numpy(points)[None], code)[0].numpy()

    level = float(np.log(0.2 / 0.8))
    start = time.perf_counter()
    result = mise(field, resolution0, steps, level)
    mesh = grid_to_mesh(result.values, level)
    mise_s = time.perf_counter() - start
    start = time.perf_counter()
    dense = dense_grid(field, resolution0 * 2**steps, batch_points=100_000)
    dense_mesh = grid_to_mesh(dense, level)
    dense_s = time.perf_counter() - start
    return {
        "decoder_hidden": hidden, "lattice": f"{resolution0 * 2**steps + 1}^3",
        "mise_points": result.n_evaluated, "dense_points": dense.size,
        "mise_seconds": round(mise_s, 3), "dense_seconds": round(dense_s, 3),
        "speedup": round(dense_s / mise_s, 1),
        "same_face_count": len(mesh.faces) == len(dense_mesh.faces),
        "sign_grid_identical": bool(np.array_equal(result.values > level, dense > level)),
    }


def marching_cubes_timing(sizes: list[int], repeats: int) -> dict[str, Any]:
    """PyMCubes vs torch marching cubes (CPU, and CUDA when available) on a padded smooth field."""
    import torch

    from recon_cli.extract import dense_grid, marching_cubes_pymcubes, marching_cubes_torch

    out: dict[str, Any] = {}
    for res in sizes:
        field = np.pad(dense_grid(_torus, res), 1, constant_values=-1e6)
        entry: dict[str, Any] = {"grid": f"{res + 3}^3 (padded {res + 1}^3)"}
        best, median, (verts, faces) = _best(lambda f=field: marching_cubes_pymcubes(f, 0.0), repeats)
        entry["pymcubes"] = {"best_s": round(best, 4), "median_s": round(median, 4), "faces": len(faces)}
        t = torch.from_numpy(field)
        best, median, (tv, tf) = _best(lambda t=t: marching_cubes_torch(t, 0.0), repeats)
        entry["torch_cpu"] = {"best_s": round(best, 4), "median_s": round(median, 4), "faces": len(tf),
                              "same_counts": (len(tv), len(tf)) == (len(verts), len(faces))}
        if torch.cuda.is_available():
            g = t.float().cuda()
            marching_cubes_torch(g, 0.0)
            best, median, (gv, gf) = _best(lambda g=g: marching_cubes_torch(g, 0.0), repeats, torch.cuda.synchronize)
            entry["torch_cuda"] = {"best_s": round(best, 5), "median_s": round(median, 5), "faces": len(gf),
                                   "same_counts": (len(gv), len(gf)) == (len(verts), len(faces))}
        out[str(res)] = entry
    return out


def run(quick: bool) -> dict[str, Any]:
    """MISE vs dense (points and seconds) and marching cubes timings."""
    import torch

    repeats = 1 if quick else 3
    doc: dict[str, Any] = {
        "load_average_1min_before": os.getloadavg()[0],
        "torch_threads": torch.get_num_threads(),
        "mise_analytic": mise_analytic(8 if quick else 32, 2, repeats),
        "mise_vs_dense_decoder": mise_decoder(quick),
        "marching_cubes": marching_cubes_timing([32] if quick else [128, 256], repeats),
    }
    doc["load_average_1min_after"] = os.getloadavg()[0]
    return doc


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
