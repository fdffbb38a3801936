"""Decoder throughput: query points per second, torch vs onnxruntime, CPU (and GPU when present).

One shape (batch 1), the paper-size decoder (hidden 256, 5 conditional ResNet
blocks, about 1.31 MFLOP per point), random weights (speed does not depend on
them). On the CPU both runtimes run with 1 thread and with torch's default
thread count; besides wall-clock rates, points per process-CPU second are
reported (with one thread the figure least disturbed by other processes).
Rounds alternate torch and onnxruntime so that load from other
processes on a shared CPU hits both alike; best and median are reported.
Variants (full run only, default threads): onnxruntime chunk size and graph
optimisation level.

`python -m benchmarks.bench_decoder [--quick]`
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def flops_per_point(hidden: int, n_blocks: int) -> int:
    """Multiply-adds x2 of one decoder evaluation (linear layers only)."""
    return 2 * (3 * hidden + n_blocks * 2 * hidden * hidden + hidden)


def _alternate(fns: dict[str, Any], n_points: int, *, rounds: int, sync: Any = None) -> dict[str, dict]:
    """Time each function ``rounds`` times, interleaved: points per wall second (best, median)
    and per process CPU second (median; with one thread the most load-independent figure)."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm up (allocations, kernel selection)
    for _ in range(rounds):
        for name, fn in fns.items():
            if sync is not None:
                sync()
            w, c = time.perf_counter(), time.process_time()
            fn()
            if sync is not None:
                sync()
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    return {
        name: {"points_per_s_best": round(n_points / min(ts)),
               "points_per_s_median": round(n_points / statistics.median(ts)),
               "points_per_cpu_s_median": round(n_points / max(statistics.median(cpu[name]), 1e-9)),
               "seconds": [round(t, 5) for t in ts]}
        for name, ts in wall.items()
    }


def _with_threads(fn: Any, threads: int) -> Any:
    import torch

    def call() -> Any:
        torch.set_num_threads(threads)
        return fn()

    return call


def _device_section(model: Any, onnx_dir: Path, device: str, n_points: int, rounds: int, *,
                    variants: bool) -> dict[str, Any]:
    """CPU: torch and onnxruntime at 1 thread and at torch's default count (same for both)."""
    import torch

    from recon_cli.runtime.onnx_backend import OnnxBackend, cuda_provider_available
    from recon_cli.runtime.torch_backend import TorchBackend

    torch_b = TorchBackend(model, device=device)
    gen = torch.Generator().manual_seed(0)
    points = ((torch.rand(1, n_points, 3, generator=gen) - 0.5) * 1.1).to(torch_b.device)  # (1, N, 3)
    code = torch.randn(1, model.config.decoder1.c_dim, generator=gen).to(torch_b.device)
    sync = torch.cuda.synchronize if device == "cuda" else None
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads}) if device == "cpu" else [default_threads]
    section: dict[str, Any] = {"n_points": n_points, "batch": 1, "rounds": rounds}
    ort_ok = device == "cpu" or cuda_provider_available()
    if not ort_ok:
        section["onnxruntime_skipped"] = "onnxruntime has no CUDA execution provider (needs onnxruntime-gpu)"
    fns: dict[str, Any] = {}
    for threads in thread_counts:
        fns[f"torch threads={threads}"] = _with_threads(lambda: torch_b.decode(1, points, code), threads)
        if ort_ok:
            ort_b = OnnxBackend(onnx_dir, device=device, threads=threads)
            section["onnxruntime_provider"] = ort_b.provider
            fns[f"onnxruntime threads={threads}"] = _with_threads(
                lambda b=ort_b: b.decode(1, points, code), default_threads)
    if variants and device == "cpu":
        fns.update({k: _with_threads(f, default_threads) for k, f in _cpu_variants(onnx_dir, points, code).items()})
    try:
        section["results"] = _alternate(fns, n_points, rounds=rounds, sync=sync)
    finally:
        torch.set_num_threads(default_threads)
    results = section["results"]
    for threads in thread_counts:
        ort_key, torch_key = f"onnxruntime threads={threads}", f"torch threads={threads}"
        if ort_key in results:
            for stat in ("s_best", "s_median", "cpu_s_median"):
                section[f"onnxruntime_over_torch points_per_{stat} threads={threads}"] = round(
                    results[ort_key][f"points_per_{stat}"] / results[torch_key][f"points_per_{stat}"], 3)
    return section


def _cpu_variants(onnx_dir: Path, points: Any, code: Any) -> dict[str, Any]:
    from recon_cli.runtime.onnx_backend import OnnxBackend

    fns: dict[str, Any] = {}
    for chunk in (1024, 4096, 16384, 1 << 30):
        backend = OnnxBackend(onnx_dir, device="cpu")
        backend.cpu_chunk = chunk
        fns[f"onnxruntime chunk={chunk if chunk < 1 << 30 else 'none'}"] = \
            lambda b=backend: b.decode(1, points, code)
    for level in ("basic", "disable"):
        backend = OnnxBackend(onnx_dir, device="cpu", optimization=level)
        fns[f"onnxruntime optimization={level}"] = lambda b=backend: b.decode(1, points, code)
    return fns


def run(quick: bool) -> dict[str, Any]:
    """Points per second of the stage-1 decoder, torch vs onnxruntime, per device."""
    import torch

    from recon_cli.models import build_model, default_model_config, small_model_config
    from recon_cli.runtime.onnx_export import export_onnx

    torch.manual_seed(0)
    cfg = small_model_config("onet") if quick else default_model_config("onet")
    model = build_model(cfg).eval()
    n_points, rounds = (4096, 2) if quick else (100_000, 7)
    dec = cfg.decoder1
    doc: dict[str, Any] = {
        "model": "onet decoder (stage 1)" + (" small" if quick else ""),
        "hidden": dec.hidden, "n_blocks": dec.n_blocks, "c_dim": dec.c_dim,
        "mflop_per_point": round(flops_per_point(dec.hidden, dec.n_blocks) / 1e6, 3),
        "threads": torch.get_num_threads(),
        "devices": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir = Path(tmp) / "onnx"
        export_onnx(model, onnx_dir)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            section = _device_section(model, onnx_dir, device, n_points, rounds, variants=not quick)
            for result in section["results"].values():
                result["gflop_per_s_best"] = round(result["points_per_s_best"] * doc["mflop_per_point"] / 1e3, 2)
            doc["devices"][device] = section
    return doc


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
