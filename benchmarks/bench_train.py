"""Training throughput: samples/s and decoder query points/s of `doccnet-cpu` and `doccnet-lite`.

Both built-in configs run as configured (one torch thread each, their own batch
sizes and loaders) through the real :func:`recon_cli.training.train` on the same
procedural dataset, with the same number of query points per sample
(``data.n_points``, 1024 in both). Rounds alternate the configs so that load
from other processes on a shared CPU hits both alike; each round trains
``steps`` steps from a fresh run folder and its first logging window (warm-up)
is dropped. Reported per config: samples per wall second (best and median over
the windows), samples per process-CPU second (the main process; doccnet-cpu's
loader worker process is not counted, which favours the old config), decoder
query points per second (samples/s x n_points x decoders trained), and for
doccnet-lite the one-off feature-cache build (images/s). ``ratio`` is
lite / cpu of the median samples/s. The two decoders alone (random codes, same
batch, points and precision) are timed too: ``decoders_share_of_step`` is their
share of a training step, and ``max_ratio_with_a_free_image_stage`` the most any
config training these decoders on as many points could gain over doccnet-cpu.

Data: ``RECON_BENCH_DATA`` (a dataset root), else a procedural dataset of
3 models per category generated in a temporary folder.
``RECON_BENCH_TRAIN_SET="key=value key=value"`` adds overrides to both configs
(e.g. ``data.feature_views=4`` to reuse a smaller feature cache; the rate of
training does not depend on how many views are cached).

`python -m benchmarks.bench_train [--quick]`
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = ("doccnet-cpu", "doccnet-lite")


def _dataset(tmp: Path, per_category: int) -> Path:
    env = os.environ.get("RECON_BENCH_DATA")
    if env:
        return Path(env)
    from recon_cli.data.synth import synth_dataset

    root = tmp / "data"
    synth_dataset(root, per_category=per_category, seed=0, workers=1)
    return root


def _overrides(quick: bool, log_every: int) -> list[str]:
    out = ["steps=100000", "val_every=1000000", "checkpoint_every=1000000", f"log_every={log_every}",
           "data.val_max_models=1", "threads=1"]
    if quick:
        out += ["model.image_encoder.image_size=64"]
    return out + os.environ.get("RECON_BENCH_TRAIN_SET", "").split()


def _round(config: str, data: Path, out: Path, steps: int, log_every: int, quick: bool,
           first: bool = True) -> dict[str, Any]:
    from recon_cli.training import resolve_config, train

    cfg = resolve_config(config_file=config, overrides=_overrides(quick, log_every))
    windows: list[float] = []
    cache: dict[str, Any] = {}
    marks: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "log":
            windows.append(event["samples_per_s"])
        elif event["type"] == "cache" and event.get("what") == "features":
            cache.setdefault("start", time.perf_counter())
            cache.update(done=event["done"], end=time.perf_counter())
        elif event["type"] == "start":
            marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()

    train(cfg, data_root=data, out_dir=out, on_event=on_event, max_steps=steps)
    wall, cpu = time.perf_counter() - marks["wall"], time.process_time() - marks["cpu"]
    stages = int(cfg.model.has_stage1) + int(cfg.model.has_stage2)
    result = {"windows": [round(w, 2) for w in windows[1:]], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "samples": steps * cfg.optim.batch_size, "batch_size": cfg.optim.batch_size,
              "n_points": cfg.data.n_points, "decoders": stages, "precision": cfg.precision}
    if cache:
        views = (cfg.data.feature_views or 24) * cfg.data.feature_variants
        result["feature_cache"] = {"models": cache["done"], "seconds": round(cache["end"] - cache["start"], 2)}
        if first:  # later rounds find the cache the first one built: nothing encoded, no rate to report
            result["feature_cache"]["images_per_s_approx"] = round(
                cache["done"] * views / max(1e-9, cache["end"] - cache["start"]), 1)
        else:
            result["feature_cache"]["reused"] = True
    return result


def _decoder_seconds(config: str, quick: bool, steps: int) -> float:
    """Seconds per training step of the config's two decoders alone (forward + backward + Adam, the
    config's batch, query points and precision; random codes, so no encoder and no data loading)."""
    import torch

    from recon_cli.models import build_model
    from recon_cli.training import resolve_config
    from recon_cli.training.loop import autocast_dtype, occupancy_loss

    cfg = resolve_config(config_file=config, overrides=_overrides(quick, 10))
    model = build_model(cfg.model).train()
    decoders = [model.stage(s).decoder for s, has in ((1, cfg.model.has_stage1), (2, cfg.model.has_stage2)) if has]
    params = [p for d in decoders for p in d.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    b, n = cfg.optim.batch_size, cfg.data.n_points
    gen = torch.Generator().manual_seed(0)
    points, occ = torch.rand(b, n, 3, generator=gen) - 0.5, (torch.rand(b, n, generator=gen) > 0.5).float()
    codes = [torch.randn(b, d.c_dim, generator=gen) for d in decoders]
    dtype = autocast_dtype(cfg.precision, torch.device("cpu"))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = sum(occupancy_loss(d(points, c), occ) for d, c in zip(decoders, codes))
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def run(quick: bool) -> dict[str, Any]:
    """Alternating rounds of both configs; JSON-ready figures."""
    import torch

    torch.set_num_threads(1)
    steps, log_every, rounds = (4, 2, 1) if quick else (60, 10, 2)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        data = _dataset(Path(tmp), 1 if quick else 3)
        for r in range(rounds):
            for name in CONFIGS:
                results[name].append(_round(name, data, Path(tmp) / f"{name}-{r}", steps, log_every, quick,
                                             first=r == 0))
    summary: dict[str, Any] = {}
    for name, rs in results.items():
        windows = [w for r in rs for w in r["windows"]] or [r["samples"] / r["wall_s"] for r in rs]
        median = statistics.median(windows)
        first = rs[0]
        summary[name] = {
            "samples_per_s_best": round(max(windows), 2), "samples_per_s_median": round(median, 2),
            "samples_per_cpu_s": round(sum(r["samples"] for r in rs) / max(1e-9, sum(r["cpu_s"] for r in rs)), 2),
            "decoder_query_points_per_s_median": round(median * first["n_points"] * first["decoders"]),
            "n_points": first["n_points"], "batch_size": first["batch_size"], "precision": first["precision"],
            "rounds": rs,
        }
    for name in CONFIGS:  # what the two decoders alone cost: the part both configs share
        dec = _decoder_seconds(name, quick, 2 if quick else 10)
        per_sample = dec / summary[name]["batch_size"]
        summary[name]["decoders_s_per_step"] = round(dec, 4)
        summary[name]["decoders_share_of_step"] = round(per_sample * summary[name]["samples_per_s_median"], 3)
    cpu, lite = summary["doccnet-cpu"], summary["doccnet-lite"]
    # an image stage that cost nothing would still leave the decoders: the most any config with these
    # decoders and query points can gain over doccnet-cpu
    ceiling = 1.0 / (lite["decoders_s_per_step"] / lite["batch_size"]) / cpu["samples_per_s_median"]
    return {"configs": summary, "steps_per_round": steps, "rounds": rounds,
            "max_ratio_with_a_free_image_stage": round(ceiling, 2),
            "same_query_points": cpu["n_points"] == lite["n_points"],
            "ratio_samples_per_s_median": round(lite["samples_per_s_median"] / cpu["samples_per_s_median"], 2),
            "ratio_samples_per_cpu_s": round(lite["samples_per_cpu_s"] / cpu["samples_per_cpu_s"], 2),
            "load_average_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


if __name__ == "__main__":
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
