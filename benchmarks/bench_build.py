"""Dataset builder speed: seconds per model (one process) for few-thousand-face meshes, full defaults.

Defaults of ``recon data build``: 100k occupancy points + 100k surface points,
32^3 voxels, 24 views at 137x137 with adaptive 2x2 anti-aliasing. Reports
wall and CPU seconds of ``write_model`` (best and median of a few repeats; the
CPU may be shared, CPU time is the per-core cost) and a per-stage breakdown.
Target: <= 1 s per model per core.

`python -m benchmarks.bench_build [--quick]`
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _meshes() -> dict[str, Callable[[], Any]]:
    import trimesh

    def open_torus() -> trimesh.Trimesh:
        mesh = trimesh.creation.torus(0.35, 0.15, major_sections=64, minor_sections=32)
        mesh.update_faces(mesh.triangles_center[:, 2] < 0.1)  # cut a slot: not watertight
        mesh.remove_unreferenced_vertices()
        return mesh

    return {
        "icosphere_5120f": lambda: trimesh.creation.icosphere(subdivisions=4),
        "torus_4096f": lambda: trimesh.creation.torus(0.35, 0.15, major_sections=64, minor_sections=32),
        "open_torus_non_watertight": open_torus,
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _stages(mesh: Any) -> dict[str, float]:
    """CPU seconds of each stage of write_model on an already normalised mesh."""
    import numpy as np
    import trimesh

    from recon_cli.data.build import voxelize
    from recon_cli.data.inside import inside_mask
    from recon_cli.data.render import RenderOptions, render_views

    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    surface: list[Any] = []
    out["surface_sampling"] = _timed(lambda: surface.append(trimesh.sample.sample_surface(mesh, 100_000, seed=0)[0]))[1]
    out["voxels"] = _timed(lambda: voxelize(mesh, surface[0]))[1]
    out["render_24_views"] = _timed(lambda: render_views(mesh, RenderOptions(), rng))[1]
    points = rng.uniform(-0.55, 0.55, (100_000, 3))
    out["inside_100k"] = _timed(lambda: inside_mask(mesh, points))[1]
    return {k: round(v, 4) for k, v in out.items()}


def run(quick: bool = False) -> dict[str, Any]:
    """Benchmark document: per mesh, wall/CPU seconds per model and a stage breakdown."""
    from recon_cli.data.build import normalize_mesh, write_model

    repeats = 1 if quick else 3
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in _meshes().items():
            mesh = make()
            write_model(mesh, Path(tmp) / "warmup", seed=0)  # imports, embree BVH, caches
            walls, cpus = [], []
            for i in range(repeats):
                wall, cpu = _timed(lambda i=i: write_model(make(), Path(tmp) / f"{name}_{i}", seed=i))
                walls.append(wall)
                cpus.append(cpu)
            results[name] = {
                "faces": len(mesh.faces), "watertight": bool(mesh.is_watertight),
                "wall_s_best": round(min(walls), 3), "wall_s_median": round(statistics.median(walls), 3),
                "cpu_s_best": round(min(cpus), 3), "cpu_s_median": round(statistics.median(cpus), 3),
                "stages_cpu_s": _stages(normalize_mesh(mesh)[0]),
            }
    return {"target_s_per_model_per_core": 1.0, "n_points": 100_000, "views": 24, "size": 137,
            "repeats": repeats, "models": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per mesh")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    main()
