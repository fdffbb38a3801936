"""End-to-end reconstruction speed (one image, CPU; GPU too when present) and decoder throughput.

Full-size networks (ResNet18 + paper-size decoders, D-OccNet with both stages)
with random encoder weights; the decoders get the synthetic "blob" weights of
:mod:`recon_cli.models.synthetic`, so MISE visits as many points as for a
real compact shape (speed does not depend on the weight values). Standard
quality: resolution 32 + 2 upsampling steps (129^3 lattice), threshold 0.2.
Reported: the first call in the process ("cold": includes one-off kernel
set-up) and then best/median of warm calls, with the per-phase split. The CPU
may be shared with other processes: the load average is recorded next to the
figures; the best time is the least disturbed one. A one-thread run of D-OccNet
is added (its wall time is close to its CPU time, so it is a stable measure of
the work itself; two idle cores roughly halve its decoder share).

`python -m benchmarks.bench_reconstruct [--quick]`
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 3.0


def _model(name: str, quick: bool) -> Any:
    import torch

    from recon_cli.models import build_model, default_model_config, small_model_config
    from recon_cli.models.synthetic import make_blob_decoder

    torch.manual_seed(0)
    model = build_model(small_model_config(name) if quick else default_model_config(name)).eval()
    for stage in (model.stage1, model.stage2):
        if stage is not None:
            make_blob_decoder(stage.decoder)
    return model


def decoder_throughput(model: Any, device: str, n_points: int, rounds: int) -> dict[str, Any]:
    """Stage-1 decoder points/s on ``device`` (one shape, ``n_points`` points per call)."""
    import torch

    from recon_cli.runtime.torch_backend import TorchBackend

    backend = TorchBackend(model, device=device)
    gen = torch.Generator().manual_seed(0)
    points = ((torch.rand(1, n_points, 3, generator=gen) - 0.5) * 1.1).to(backend.device)
    code = torch.randn(1, model.config.decoder1.c_dim, generator=gen).to(backend.device)
    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
    backend.decode(1, points, code)
    times = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        backend.decode(1, points, code)
        sync()
        times.append(time.perf_counter() - start)
    dec = model.config.decoder1
    mflop = 2 * (3 * dec.hidden + dec.n_blocks * 2 * dec.hidden**2 + dec.hidden) / 1e6
    best, median = n_points / min(times), n_points / statistics.median(times)
    return {
        "n_points": n_points, "points_per_s_best": round(best), "points_per_s_median": round(median),
        "mflop_per_point": round(mflop, 3), "gflop_per_s_best": round(best * mflop / 1e3, 1),
    }


def end_to_end(model: Any, device: str, options: Any, repeats: int, image_size: int) -> dict[str, Any]:
    """Seconds for one image: cold (first call) and warm best/median, with the phase split."""
    import torch

    from recon_cli.pipeline import Reconstructor
    from recon_cli.runtime.torch_backend import TorchBackend

    backend = TorchBackend(model, device=device)
    recon = Reconstructor(backend, options=options)
    image = torch.rand(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    (first,) = recon.reconstruct_images(image)
    cold = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        (rec,) = recon.reconstruct_images(image)
        runs.append((time.perf_counter() - start, rec, time.process_time() - cpu_start))
    best_time, best, _cpu = min(runs, key=lambda item: item[0])
    return {
        "process_cpu_seconds_min": round(min(c for _, _, c in runs), 3),
        "cold_seconds": round(cold, 3),
        "warm_best_seconds": round(best_time, 3),
        "warm_median_seconds": round(statistics.median(t for t, _, _ in runs), 3),
        "phases_best_run": {k: round(v, 3) for k, v in best.timings.items()},
        "n_evaluated": best.n_evaluated,
        "faces": len(best.mesh.faces),
        "watertight": bool(best.mesh.is_watertight),
        "same_mesh_as_first_call": len(first.mesh.faces) == len(best.mesh.faces),
    }


def run(quick: bool) -> dict[str, Any]:
    """Decoder points/s and one-image end-to-end seconds (D-OccNet and ONet), per device."""
    import os

    import torch

    from recon_cli.pipeline import ExtractOptions

    repeats, n_points, rounds = (1, 4096, 2) if quick else (5, 100_000, 5)
    doc: dict[str, Any] = {
        "networks": "small (quick)" if quick else "paper size (ResNet18, PointNet 512, decoders 256 x 5 blocks)",
        "quality": "draft 17^3" if quick else "standard 129^3 (32 + 2 steps), threshold 0.2",
        "torch_threads": torch.get_num_threads(),
        "load_average_1min_before": os.getloadavg()[0],
        "target": f"one image under {TARGET_SECONDS} s on a 2-core CPU (D-OccNet, 129^3)",
        "devices": {},
    }
    base = ExtractOptions(resolution0=8, upsampling_steps=1) if quick else ExtractOptions()
    variants = {
        "doccnet": ("doccnet", base),
        "doccnet_stage1_full_resolution": ("doccnet", ExtractOptions(
            resolution0=base.resolution0, upsampling_steps=base.upsampling_steps, stage1_upsampling_steps=None)),
        "onet": ("onet", base),
    }
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    models = {name: _model(name, quick) for name in ("doccnet", "onet")}
    for device in devices:
        section: dict[str, Any] = {"decoder": decoder_throughput(models["doccnet"], device, n_points, rounds)}
        for label, (name, options) in variants.items():
            size = models[name].config.image_encoder.image_size
            section[label] = end_to_end(models[name], device, options, repeats, size)
        if device == "cpu":
            # one thread: wall time close to the CPU work itself, much less disturbed by other processes
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                size = models["doccnet"].config.image_encoder.image_size
                section["doccnet_1_thread"] = end_to_end(models["doccnet"], device, base, repeats, size)
            finally:
                torch.set_num_threads(threads)
        best = section["doccnet"]["warm_best_seconds"]
        section["doccnet_under_target_best"] = best < TARGET_SECONDS
        section["doccnet_under_target_median"] = section["doccnet"]["warm_median_seconds"] < TARGET_SECONDS
        doc["devices"][device] = section
    doc["load_average_1min_after"] = os.getloadavg()[0]
    return doc


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
