"""Issue 15 acceptance figures, measured in one run with the shipped weights (``weights/doccnet.pt``).

`python -m benchmarks --only speed -o benchmarks/results/speed-cpu-2core.json` (about 3-5 minutes
on 2 cores). Sections:

* ``one_image``: one image (examples/chair.png), 129^3, in process (no start-up, no file I/O), in
  the weights' default mode (``--model auto``: the blend for the shipped file): warm best/median
  seconds for 1 thread pinned to one core and for 2 threads, float32, mixed (the default where the
  CPU has native bf16) and bfloat16; ``two_threads_over_one`` (must be <= 1); and the plain chain
  (``--model doccnet``) in the default precision on one core.
* ``cli``: ``python -m recon_cli reconstruct`` (default precision) in a fresh process (start-up included): one image,
  and 20 images in one command; ``per_image_after_first_s = (T20 - T1) / 19``; the same 20-image
  command with a busy-loop process on one core (``busy_over_quiet``); ``--help`` and a usage error;
  the import time a reconstruct still spends (``python -X importtime``).
* ``mise_257``: stage-2 extraction at 257^3 (32 + 3 steps) on the real network: decoder seconds vs
  MISE bookkeeping seconds (query + update + dense field), and the fixture-free reference ratio at
  129^3: MISE vs a plain dense grid on the same network (seconds and points).
* ``decoder``: points/s of the stage-2 decoder per runtime (torch float32/bfloat16, onnxruntime),
  threads 1 and 2.
* ``marching_cubes``: PyMCubes vs torch on the real 129^3 and 257^3 fields, one thread.
* ``meshes``: every example image: the float32 torch mesh (1 thread) against 2 threads (bytes
  identical), mixed, bfloat16 and onnxruntime (IoU of the final and the stage-1 meshes on 100k
  points). Stage 2's 300 points are drawn with random numbers seeded by the input image, so a
  stage-1 mesh that differs in its last bits (onnxruntime, mixed) gives the same points to within
  them; bfloat16's stage-1 meshes differ by more, and a stage-2 mesh is sensitive to its points.

The load average before and after is recorded: figures taken on a busy machine are not the
quiet-machine figures the acceptance asks for.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
WEIGHTS = REPO / "weights" / "doccnet.pt"
#: The images of the 20-image batch (cycled).
BATCH_IMAGES = ("chair.png", "car.png", "sofa.png", "table.png", "photo_car.jpg", "photo_chair.jpg")
ALL_IMAGES = ("airplane.png", "car.png", "chair.png", "lamp.png", "sofa.png", "table.png", "vessel.png",
              "photo_car.jpg", "photo_chair.jpg")


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


@contextlib.contextmanager
def _pinned(cores: set[int] | None) -> Iterator[None]:
    """Run the block on ``cores`` only (None: no change)."""
    if cores is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _image(name: str, size: int) -> Any:
    from recon_cli.io.images import WORK_SIZE, prepare_image, read_image

    return prepare_image(read_image(EXAMPLES / name, draft=WORK_SIZE).image, size=size).tensor[None]


def _reconstructor(threads: int, precision: str = "float32", backend: str = "torch", resolution: tuple = (32, 2),
                   stages: str = "auto") -> Any:
    from recon_cli.pipeline import ExtractOptions, Reconstructor
    from recon_cli.reconstruct import ReconstructOptions, make_backend

    runtime, _ = make_backend(ReconstructOptions(weights=WEIGHTS, backend=backend, device="cpu", threads=threads,
                                                 precision=precision))
    return Reconstructor(runtime, options=ExtractOptions(resolution0=resolution[0], upsampling_steps=resolution[1]),
                         stages=stages)


def _timed_runs(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return {"first_call_s": _round(cold), "best_s": _round(min(walls)), "median_s": _round(statistics.median(walls)),
            "cpu_s_min": _round(min(cpus)), "runs_s": [_round(w) for w in walls]}


def one_image(repeats: int) -> dict[str, Any]:
    """One image in process, 129^3: 1 thread on one core vs 2 threads; float32 and bfloat16."""
    out: dict[str, Any] = {"image": "examples/chair.png", "lattice": "129^3"}
    for precision in ("float32", "mixed", "bfloat16"):
        for threads in (1, 2):
            rec = _reconstructor(threads, precision)
            image = _image("chair.png", rec.backend.image_size)
            cores = {sorted(os.sched_getaffinity(0))[0]} if threads == 1 and hasattr(os, "sched_getaffinity") else None
            with _pinned(cores):
                entry = _timed_runs(lambda r=rec, i=image: r.reconstruct_images(i), repeats)
            (result,) = rec.reconstruct_images(image)
            entry["phases_s"] = {k: _round(v) for k, v in result.timings.items()}
            entry["points_evaluated"] = result.n_evaluated
            entry["pinned_to_one_core"] = cores is not None
            out[f"{precision} threads={threads}"] = entry
            rec.backend.close()
        one, two = out[f"{precision} threads=1"], out[f"{precision} threads=2"]
        out[f"{precision} two_threads_over_one_best"] = _round(two["best_s"] / one["best_s"])
        out[f"{precision} two_threads_over_one_median"] = _round(two["median_s"] / one["median_s"])
    out["mode"] = _reconstructor(1).stages
    from recon_cli.runtime.decoder_kernel import resolve_precision

    chain = _reconstructor(1, resolve_precision("auto"), stages="1+2")
    image = _image("chair.png", chain.backend.image_size)
    cores = {sorted(os.sched_getaffinity(0))[0]} if hasattr(os, "sched_getaffinity") else None
    with _pinned(cores):
        out["chain threads=1"] = _timed_runs(lambda: chain.reconstruct_images(image), repeats)
    chain.backend.close()
    return out


def _cli(args: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    full = dict(os.environ)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env or {})
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full, cwd=REPO, timeout=600)
    return time.perf_counter() - start, proc


def _import_seconds(stderr: str) -> dict[str, Any]:
    """Top-level import times from ``python -X importtime`` output: total and the largest packages."""
    top: dict[str, float] = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and not match.group(2).startswith(" "):
            top[match.group(2)] = int(match.group(1)) / 1e6
    largest = sorted(top.items(), key=lambda kv: -kv[1])[:6]
    return {"total_s": _round(sum(top.values())), "largest_s": {k: _round(v) for k, v in largest}}


def cli(n_images: int, repeats: int) -> dict[str, Any]:
    """Fresh-process wall times of `recon reconstruct`, quiet and with one core kept busy."""
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    try:
        images = []
        for i in range(n_images):
            name = BATCH_IMAGES[i % len(BATCH_IMAGES)]
            target = work / "in" / f"{i:02d}_{name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(EXAMPLES / name, target)
            images.append(str(target))
        base = ["-m", "recon_cli", "reconstruct", "--weights", str(WEIGHTS), "--json"]

        def run(files: list[str], tag: str) -> float:
            best = float("inf")
            for k in range(repeats):
                out = work / f"out-{tag}-{k}"
                wall, proc = _cli([*base, *files, "--out-dir", str(out)])
                if proc.returncode != 0:
                    raise RuntimeError(f"recon reconstruct failed ({tag}): {proc.stderr.strip()[-500:]}")
                best = min(best, wall)
            return best

        doc: dict[str, Any] = {"images": n_images, "image_names": list(BATCH_IMAGES), "threads": "default"}
        doc["first_image_wall_s"] = _round(run(images[:1], "one"))
        no_preload = ("import sys, recon_cli.reconstruct as r; r.preload_modules = lambda names: None; "
                      "from recon_cli.cli.app import main; sys.argv = ['recon', *sys.argv[1:]]; main()")
        doc["first_image_wall_without_import_preload_s"] = _round(min(
            _cli(["-c", no_preload, *base[2:], images[0], "--out-dir", str(work / f"out-np-{k}")])[0]
            for k in range(repeats)))
        doc["batch_wall_s"] = _round(run(images, "all"))
        doc["per_image_after_first_s"] = _round((doc["batch_wall_s"] - doc["first_image_wall_s"]) / (n_images - 1))
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            doc["batch_wall_one_core_busy_s"] = _round(run(images, "busy"))
        finally:
            busy.kill()
            busy.wait()
        doc["busy_over_quiet"] = _round(doc["batch_wall_one_core_busy_s"] / doc["batch_wall_s"])
        help_wall = min(_cli(["-m", "recon_cli", "--help"])[0] for _ in range(3))
        usage_wall = min(_cli(["-m", "recon_cli", "reconstruct"])[0] for _ in range(3))
        doc["help_wall_s"], doc["usage_error_wall_s"] = _round(help_wall), _round(usage_wall)
        _, proc = _cli(["-X", "importtime", *base, images[0], "--out-dir", str(work / "out-imports")])
        doc["reconstruct_imports"] = _import_seconds(proc.stderr)
        return doc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mise_257(quick: bool) -> dict[str, Any]:
    """Stage-2 MISE at 257^3 on the real network: decoder vs bookkeeping; MISE vs dense at 129^3."""
    import torch

    from recon_cli.extract.grid import probability_to_logit
    from recon_cli.extract.mise import MISE, dense_grid

    rec = _reconstructor(1)
    backend = rec.backend
    image = _image("chair.png", backend.image_size)
    (first,) = rec.reconstruct_images(image)
    with torch.inference_mode():
        code = backend.encode_points(torch.from_numpy(first.points)[None])
    level = probability_to_logit(0.2)
    doc: dict[str, Any] = {"image": "examples/chair.png", "stage": 2, "threads": 1, "precision": "float32"}
    for label, steps in (("129^3", 2), ("257^3", 3)) if not quick else (("65^3", 1),):
        best: dict[str, float] | None = None
        for _ in range(2):
            decoder = bookkeeping = 0.0
            start = time.perf_counter()
            state = MISE(32, steps, level)
            while not state.done:
                t0 = time.perf_counter()
                query = state.query()
                t1 = time.perf_counter()
                (logits,) = backend.decode_many(2, [query], code)
                t2 = time.perf_counter()
                state.update(logits)
                t3 = time.perf_counter()
                decoder += t2 - t1
                bookkeeping += (t1 - t0) + (t3 - t2)
            t4 = time.perf_counter()
            state.to_dense()
            dense_field = time.perf_counter() - t4
            run = {"decoder_s": decoder, "bookkeeping_s": bookkeeping, "dense_field_s": dense_field,
                   "total_s": time.perf_counter() - start, "points": state.n_evaluated, "rounds": state.rounds}
            if best is None or run["total_s"] < best["total_s"]:
                best = run
        assert best is not None
        entry = {k: (_round(v, 4) if isinstance(v, float) else v) for k, v in best.items()}
        entry["bookkeeping_over_decoder"] = _round((best["bookkeeping_s"] + best["dense_field_s"]) / best["decoder_s"])
        doc[label] = entry
    if not quick:  # the fixture-free reference: a plain dense grid on the same network
        start = time.perf_counter()
        dense = dense_grid(lambda p: backend.decode_many(2, [p], code)[0], 128)
        dense_s = time.perf_counter() - start
        ours = doc["129^3"]
        doc["reference_dense_129"] = {
            "dense_s": _round(dense_s), "dense_points": 129**3, "mise_s": ours["total_s"],
            "mise_points": ours["points"], "mise_over_dense_time": _round(ours["total_s"] / dense_s),
            "mise_over_dense_points": _round(ours["points"] / 129**3, 4),
        }
        state = MISE(32, 2, level)
        while not state.done:
            state.update(backend.decode_many(2, [state.query()], code)[0])
        doc["reference_dense_129"]["same_sign_grid"] = bool(np.array_equal(state.to_dense() > level, dense > level))
    backend.close()
    return doc


def decoder(n_points: int, repeats: int) -> dict[str, Any]:
    """Stage-2 decoder points/s per runtime and thread count (one shape, ``n_points`` points)."""
    import torch

    rng = np.random.default_rng(0)
    points = rng.uniform(-0.55, 0.55, (n_points, 3)).astype(np.float32)
    out: dict[str, Any] = {"n_points": n_points, "decoder": "stage 2 of the shipped weights"}
    runtimes = [("torch float32", "torch", "float32"), ("torch bfloat16", "torch", "bfloat16")]
    try:
        import onnxruntime  # noqa: F401

        runtimes.append(("onnxruntime float32", "onnx", "float32"))
    except ImportError:
        out["onnxruntime"] = "not installed"
    for label, backend_name, precision in runtimes:
        for threads in (1, 2):
            rec = _reconstructor(threads, precision, backend_name)
            code = torch.randn(1, _c_dim(rec.backend), generator=torch.Generator().manual_seed(0))
            timing = _timed_runs(lambda r=rec, c=code: r.backend.decode_many(2, [points], c), repeats)
            out[f"{label} threads={threads}"] = {"points_per_s_best": round(n_points / timing["best_s"]),
                                                 "points_per_s_median": round(n_points / timing["median_s"])}
            rec.backend.close()
    return out


def _c_dim(backend: Any) -> int:
    config = getattr(backend, "config", None)
    if config is not None:
        return int(config.decoder2.c_dim)
    return int(backend.manifest["c_dim2"])


def marching_cubes(repeats: int) -> dict[str, Any]:
    """PyMCubes vs torch marching cubes on the stage-2 field of the chair (one thread)."""
    import torch

    from recon_cli.extract.grid import probability_to_logit
    from recon_cli.extract.mise import mise_batched
    from recon_cli.extract.postprocess import grid_to_mesh

    rec = _reconstructor(1)
    backend = rec.backend
    (first,) = rec.reconstruct_images(_image("chair.png", backend.image_size))
    with torch.inference_mode():
        code = backend.encode_points(torch.from_numpy(first.points)[None])
    level = probability_to_logit(0.2)
    out: dict[str, Any] = {"threads": 1}
    for label, steps in (("129^3", 2), ("257^3", 3)):
        (field,) = mise_batched(lambda q: backend.decode_many(2, q, code), 1, 32, steps, level)
        entry = {}
        for name in ("pymcubes", "torch"):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                mesh = grid_to_mesh(field.values if name == "pymcubes" else torch.from_numpy(field.values), level,
                                    backend=name)
                times.append(time.perf_counter() - start)
            entry[name] = {"best_s": _round(min(times)), "faces": len(mesh.faces)}
        entry["torch_over_pymcubes"] = _round(entry["torch"]["best_s"] / entry["pymcubes"]["best_s"])
        out[label] = entry
    backend.close()
    return out


def _iou(a: Any, b: Any, n: int = 100_000) -> float:
    if len(a.faces) == 0 or len(b.faces) == 0:
        return 1.0 if len(a.faces) == len(b.faces) else 0.0
    points = np.random.default_rng(0).uniform(-0.55, 0.55, (n, 3))
    inside_a, inside_b = a.contains(points), b.contains(points)
    union = int((inside_a | inside_b).sum())
    return float((inside_a & inside_b).sum() / union) if union else 1.0


def meshes(names: tuple[str, ...]) -> dict[str, Any]:
    """Each example: float32 torch (1 thread) vs 2 threads (identical), mixed, bfloat16 and onnxruntime (IoU)."""
    variants = {"float32 threads=2": (2, "float32", "torch"), "mixed": (2, "mixed", "torch"),
                "bfloat16": (2, "bfloat16", "torch")}
    try:
        import onnxruntime  # noqa: F401

        variants["onnxruntime"] = (2, "float32", "onnx")
    except ImportError:
        pass
    reference = _reconstructor(1)
    others = {label: _reconstructor(*spec) for label, spec in variants.items()}
    out: dict[str, Any] = {"reference": "torch float32, 1 thread", "images": {}}
    for name in names:
        image = _image(name, reference.backend.image_size)
        (ref,) = reference.reconstruct_images(image)
        entry: dict[str, Any] = {"faces": len(ref.mesh.faces)}
        for label, rec in others.items():
            (got,) = rec.reconstruct_images(image)
            same = (len(got.mesh.faces) == len(ref.mesh.faces)
                    and np.array_equal(np.asarray(got.mesh.vertices), np.asarray(ref.mesh.vertices))
                    and np.array_equal(np.asarray(got.mesh.faces), np.asarray(ref.mesh.faces)))
            entry[label] = {"identical": bool(same), "iou": _round(1.0 if same else _iou(ref.mesh, got.mesh), 4)}
            if ref.stage1_mesh is not None and got.stage1_mesh is not None:
                entry[label]["stage1_iou"] = _round(_iou(ref.stage1_mesh, got.stage1_mesh), 4)
        out["images"][name] = entry
    for label in others:
        ious = [e[label]["iou"] for e in out["images"].values()]
        out[f"{label} min_iou"] = min(ious)
        out[f"{label} all_identical"] = all(e[label]["identical"] for e in out["images"].values())
    for rec in [reference, *others.values()]:
        rec.backend.close()
    return out


def run(quick: bool) -> dict[str, Any]:
    """Every acceptance figure of issue 15 (``quick``: a smoke test on small sizes)."""
    doc: dict[str, Any] = {"load_average_before": os.getloadavg()[0], "weights": str(WEIGHTS.relative_to(REPO)),
                           "seconds": {}}
    sections: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("one_image", lambda: one_image(2 if quick else 7)),
        ("mise_257", lambda: mise_257(quick)),
        ("decoder", lambda: decoder(20_000 if quick else 200_000, 2 if quick else 5)),
        ("meshes", lambda: meshes(ALL_IMAGES[:2] if quick else ALL_IMAGES)),
    ]
    if not quick:
        sections.append(("marching_cubes", lambda: marching_cubes(3)))
    sections.append(("cli", lambda: cli(3 if quick else 20, 1 if quick else 2)))
    for name, fn in sections:
        start = time.perf_counter()
        doc[name] = fn()
        doc["seconds"][name] = _round(time.perf_counter() - start, 1)
        print(f"  speed: {name} done in {doc['seconds'][name]:.1f} s (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr, flush=True)
    doc["load_average_after"] = os.getloadavg()[0]
    doc["acceptance"] = _acceptance(doc)
    return doc


def _acceptance(doc: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets next to the measured figures (the default precision of this CPU, and float32)."""
    from recon_cli.runtime.decoder_kernel import resolve_precision

    one = doc["one_image"]
    cli_doc = doc["cli"]
    mise = doc["mise_257"].get("257^3") or next(v for k, v in doc["mise_257"].items() if k.endswith("^3"))
    default = resolve_precision("auto")
    return {
        "default_precision": default,
        "one_image_1_core_best_s (<= 0.5)": one[f"{default} threads=1"]["best_s"],
        "one_image_1_core_best_s float32": one["float32 threads=1"]["best_s"],
        "one_image_mode": one.get("mode"),
        "one_image_1_core_best_s chain (--model doccnet)": one["chain threads=1"]["best_s"],
        "two_threads_over_one_median (<= 1)": one[f"{default} two_threads_over_one_median"],
        "cli_per_image_after_first_s (<= 0.35)": cli_doc["per_image_after_first_s"],
        "cli_first_image_wall_s (<= 2.0)": cli_doc["first_image_wall_s"],
        "cli_busy_over_quiet (<= 2.2)": cli_doc["busy_over_quiet"],
        "mise_257_bookkeeping_over_decoder (<= 0.5)": mise["bookkeeping_over_decoder"],
        "meshes_2_threads_identical": doc["meshes"]["float32 threads=2 all_identical"],
        "meshes_mixed_min_iou (>= 0.99 to be default)": doc["meshes"]["mixed min_iou"],
        "meshes_bfloat16_min_iou": doc["meshes"]["bfloat16 min_iou"],
        "meshes_onnxruntime_min_iou (>= 0.99)": doc["meshes"].get("onnxruntime min_iou"),
        "help_wall_s (<= 0.3)": cli_doc["help_wall_s"],
        "usage_error_wall_s (<= 0.3)": cli_doc["usage_error_wall_s"],
        "load_average_before_after": [doc["load_average_before"], doc["load_average_after"]],
    }


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
