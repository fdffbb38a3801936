"""Benchmark runner: imports every ``benchmarks/bench_*.py`` module and runs its ``run(quick)``.

Prints one JSON document (stdout, and ``-o FILE``)::

    {"hardware": {...}, "quick": bool, "started": ISO time,
     "benchmarks": {"decoder": {...}, "end_to_end": {...}, ...},
     "seconds": {"decoder": 12.3, ...}, "errors": {"name": "message", ...}}

A failing module is recorded under ``errors`` and the others still run; the
exit status is 1 when any failed. Progress lines go to stderr.

Also holds the small timing helpers the bench modules share.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"


# --------------------------------------------------------------------------- helpers for bench modules


def time_call(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1,
              sync: Callable[[], None] | None = None) -> dict[str, Any]:
    """Wall seconds of ``fn()``: best, median and every repeat (after ``warmup`` untimed calls).

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each clock read.
    The CPU may be shared, so report the best (least disturbed) and the median.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync is not None:
            sync()
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - start)
    return {"best": min(times), "median": statistics.median(times), "all": [round(t, 6) for t in times]}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (getrusage ru_maxrss)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, library versions, GPU if any."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "count": torch.cuda.device_count(),
                       "memory_gb": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    return info


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def script_main(run: Callable[[bool], dict], argv: Sequence[str] | None = None) -> int:
    """``__main__`` of a bench module: ``[--quick]``, prints its JSON document with the hardware."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args(argv)
    print(json.dumps({"hardware": hardware(), "quick": args.quick, "result": run(args.quick)}, indent=2,
                     default=str))
    return 0


# --------------------------------------------------------------------------- runner


def discover() -> list[str]:
    """Names (without the ``bench_`` prefix) of the bench modules in this folder, sorted."""
    return sorted(p.stem[len(PREFIX):] for p in PACKAGE_DIR.glob(f"{PREFIX}*.py"))


def _resolve(names: Sequence[str] | None) -> list[str]:
    available = discover()
    if not names:
        return available
    chosen = []
    for name in names:
        short = name[len(PREFIX):] if name.startswith(PREFIX) else name
        short = short.removesuffix(".py")
        if short not in available:
            raise KeyError(f"unknown benchmark {name!r}; available: {', '.join(available) or '(none)'}")
        chosen.append(short)
    return chosen


def run_benchmarks(names: Sequence[str] | None = None, *, quick: bool = False,
                   on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the chosen bench modules (all by default); return the combined document."""
    chosen = _resolve(names)
    doc: dict[str, Any] = {
        "hardware": hardware(), "quick": quick,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "benchmarks": {}, "seconds": {}, "errors": {},
    }
    for name in chosen:
        if on_event is not None:
            on_event(f"running {PREFIX}{name}{' (quick)' if quick else ''}...")
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{PREFIX}{name}")
            run = getattr(module, "run", None)
            if not callable(run):
                raise TypeError(f"{PREFIX}{name}.py has no run(quick) function")
            doc["benchmarks"][name] = run(quick)
        except Exception as exc:  # one broken benchmark must not lose the others' results
            doc["errors"][name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if on_event is not None:
                on_event("".join(traceback.format_exception(exc)).rstrip())
        doc["seconds"][name] = round(time.perf_counter() - start, 2)
        if on_event is not None:
            on_event(f"  {PREFIX}{name}: {'failed' if name in doc['errors'] else 'done'} "
                     f"in {doc['seconds'][name]:.1f} s")
    doc["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks [--quick] [--only NAME]... [-o results.json] [--list]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not real figures")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    parser.add_argument("-o", "--output", type=Path, help="also write the JSON document to this file")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(discover()))
        return 0
    try:
        _resolve(args.only)
    except KeyError as exc:
        parser.error(exc.args[0])
    doc = run_benchmarks(args.only, quick=args.quick, on_event=lambda msg: print(msg, file=sys.stderr, flush=True))
    text = json.dumps(doc, indent=2, default=str) + "\n"
    if args.output is not None:
        from recon_cli.io.atomic import atomic_write_text

        atomic_write_text(args.output, text)
    sys.stdout.write(text)
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(PACKAGE_DIR.parent))  # `python benchmarks/run.py` from anywhere
    raise SystemExit(main())
