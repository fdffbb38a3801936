"""End-to-end reconstruction: seconds per image (and images/s in batches on a GPU).

For ``onet`` and ``doccnet`` at the draft / standard / high quality presets
(65^3, 129^3, 257^3 MISE lattices), with the torch and the onnxruntime
backends, through :class:`recon_cli.pipeline.Reconstructor` (encode, MISE,
marching cubes, and for D-OccNet the 300-point resampling and stage 2).

Weights: paper-size networks with random encoders and decoders set to a closed
blob (``recon_cli.models.synthetic.make_blob_decoder``), so every stage extracts a real
surface of about the area of a ShapeNet object; speed does not depend on the
learnt values. Set ``RECON_BENCH_WEIGHTS=DIR`` (holding ``onet.pt`` and/or
``doccnet.pt``) to time trained checkpoints instead.

Peak memory: ``peak_rss_mb`` is the process's high-water mark so far
(``getrusage`` never goes down, so read it as "at most"); on a GPU
``cuda_peak_mb`` is ``torch.cuda.max_memory_allocated`` for that run alone.

`python -m benchmarks.bench_end_to_end [--quick]`
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = ("onet", "doccnet")
QUALITIES = ("draft", "standard", "high")
BATCH_SIZES = (1, 8, 32, 128)


def make_model(name: str, *, quick: bool) -> tuple[Any, str]:
    """(model in eval mode, description of its weights)."""
    import torch

    from recon_cli.models import build_model, default_model_config, small_model_config

    weights_dir = os.environ.get("RECON_BENCH_WEIGHTS")
    if weights_dir and (Path(weights_dir) / f"{name}.pt").is_file():
        from recon_cli.io.checkpoint import load_checkpoint

        model, _cfg, _extra = load_checkpoint(Path(weights_dir) / f"{name}.pt")
        return model.eval(), f"checkpoint {Path(weights_dir) / f'{name}.pt'}"
    torch.manual_seed(0)
    model = build_model(small_model_config(name) if quick else default_model_config(name)).eval()
    from recon_cli.models.synthetic import make_blob_decoder as blob

    for stage in (model.stage1, model.stage2):
        if stage is not None:
            blob(stage.decoder)
    return model, "random encoders, blob decoders" + (" (small widths)" if quick else " (paper sizes)")


def _options(quality: str, *, quick: bool) -> Any:
    from recon_cli.pipeline import QUALITY_PRESETS, ExtractOptions

    r0, steps = QUALITY_PRESETS[quality]
    if quick:
        r0, steps = 16, 1
    return ExtractOptions(resolution0=r0, upsampling_steps=steps)


def _backends(model: Any, onnx_dir: Path, device: str) -> dict[str, Any]:
    from recon_cli.runtime.onnx_backend import OnnxBackend, cuda_provider_available
    from recon_cli.runtime.torch_backend import TorchBackend

    backends: dict[str, Any] = {"torch": TorchBackend(model, device=device)}
    if device == "cpu" or cuda_provider_available():
        backends["onnx"] = OnnxBackend(onnx_dir, device=device)
    return backends


def _measure(backend: Any, quality: str, images: Any, *, quick: bool, repeats: int) -> dict[str, Any]:
    import torch

    from benchmarks.run import peak_rss_mb, time_call
    from recon_cli.pipeline import Reconstructor

    options = _options(quality, quick=quick)
    rec = Reconstructor(backend, options=options)
    cuda = backend.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out: list[Any] = []
    timing = time_call(lambda: out.append(rec.reconstruct_images(images)), repeats=repeats, warmup=0,
                       sync=torch.cuda.synchronize if cuda else None)
    last = out[-1]
    side = options.resolution0 * 2 ** options.upsampling_steps + 1
    b = len(images)
    entry = {
        "lattice": f"{side}^3", "batch": b,
        "seconds_per_image_best": round(timing["best"] / b, 4),
        "seconds_per_image_median": round(timing["median"] / b, 4),
        "images_per_s_best": round(b / timing["best"], 2),
        "repeats": repeats,
        "n_evaluated": int(last[0].n_evaluated),
        "faces": int(len(last[0].mesh.faces)),
        "phase_seconds": {k: round(v, 4) for k, v in last[0].timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    if cuda:
        entry["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return entry


def _images(model: Any, batch: int, device: str) -> Any:
    import torch

    s = model.config.image_encoder.image_size
    return torch.rand(batch, 3, s, s, generator=torch.Generator().manual_seed(0)).to(device)


def run(quick: bool) -> dict[str, Any]:
    """Seconds per image per model / device / backend / quality; GPU batch throughput."""
    import torch

    from recon_cli.runtime.onnx_export import export_onnx

    qualities = ("draft",) if quick else QUALITIES
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    doc: dict[str, Any] = {"models": {}, "threads": torch.get_num_threads(),
                           "note": "seconds per image at batch 1 unless stated"}
    for name in MODELS:
        model, weights = make_model(name, quick=quick)
        section: dict[str, Any] = {"weights": weights, "devices": {}}
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(model, Path(tmp) / "onnx")
            for device in devices:
                per_backend: dict[str, Any] = {}
                for backend_name, backend in _backends(model, Path(tmp) / "onnx", device).items():
                    images = _images(model, 1, device)
                    _warmup(backend, images, quick=quick)
                    per_backend[backend_name] = {
                        q: _measure(backend, q, images, quick=quick, repeats=1 if q == "high" or quick else 2)
                        for q in qualities
                    }
                    if device == "cuda" and not quick:
                        per_backend[backend_name]["batch_standard"] = {
                            str(b): _measure(backend, "standard", _images(model, b, device), quick=False, repeats=2)
                            for b in BATCH_SIZES
                        }
                section["devices"][device] = per_backend
        doc["models"][name] = section
        del model
    return doc


def _warmup(backend: Any, images: Any, *, quick: bool) -> None:
    """One draft reconstruction so sessions, kernels and allocators are warm before timing."""
    from recon_cli.pipeline import Reconstructor

    Reconstructor(backend, options=_options("draft", quick=quick)).reconstruct_images(images)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.run import script_main

    raise SystemExit(script_main(run))
