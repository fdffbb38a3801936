"""Batch reconstruction of files: the library behind ``recon reconstruct``.

:func:`reconstruct_files` expands the inputs, plans the outputs, loads the
weights once, preprocesses each photo, sends batches of ``batch_size`` images
(or point clouds) through :class:`recon_cli.pipeline.Reconstructor` and writes
every mesh atomically. A problem with one file (unreadable image, empty
reconstruction, refused path...) becomes that file's ``error`` and the batch
goes on; problems with the whole run (no weights, bad checkpoint, no CUDA)
raise :class:`ReconError`. Results are handed to ``on_result`` as each file
finishes. Nothing is printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recon_cli.errors import CheckpointError, ConfigError, InputError, ReconError
from recon_cli.io.images import MAX_PIXELS
from recon_cli.io.inputs import IMAGE_SUFFIXES, POINT_SUFFIXES, Job, expand_inputs, plan_jobs

if TYPE_CHECKING:
    import trimesh

    from recon_cli.pipeline import Reconstruction, Reconstructor
    from recon_cli.runtime.base import Backend

#: --model -> Reconstructor stages ("2" = stage 2 only, on point clouds).
MODEL_STAGES: dict[str, str] = {"auto": "auto", "onet": "1", "doccnet": "1+2", "blend": "blend", "onet-pcl": "2",
                                "r2n2": "r2n2"}

#: File name of the default checkpoint, looked for in :func:`default_weight_dirs`.
DEFAULT_WEIGHTS = "doccnet.pt"

BACKENDS = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class ReconstructOptions:
    """Everything ``recon reconstruct`` can be told besides its inputs and outputs."""

    model: str = "auto"
    weights: Path | None = None
    backend: str = "auto"
    onnx_dir: Path | None = None
    device: str = "auto"
    resolution: int = 32
    upsampling_steps: int = 2
    threshold: float | None = None  # None = the checkpoint's tuned threshold (else 0.2)
    simplify_faces: int | None = None
    batch_size: int | None = None  # images per network batch; None = 1 on the CPU, 4 on a GPU
    fmt: str | None = None
    recursive: bool = False
    skip_existing: bool = False
    save_stages: bool = False
    save_input: bool = False
    remove_bg: bool = True  # False = segment "none" (the old --no-remove-bg)
    segment: str = "auto"  # auto|border|grabcut|none (recon_cli.io.segment)
    mask: Path | None = None  # the user's object mask for the (single) input photo
    save_mask: bool = False  # write <stem>_mask.png, the mask used, in the photo's pixel grid
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    max_pixels: int = MAX_PIXELS
    threads: int | None = None  # CPU threads of the networks; None = recon_cli.runtime.threads default
    precision: str = "auto"  # CPU decoder arithmetic: auto (mixed on native-bf16 CPUs), float32, mixed or bfloat16


@dataclass
class FileResult:
    """The outcome for one input file (``error`` set when it failed)."""

    input: str
    output: str | None
    vertices: int = 0
    faces: int = 0
    watertight: bool = False
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # extra files written (stages, input image)

    @property
    def ok(self) -> bool:
        """True when the file was reconstructed or skipped."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


@dataclass
class ReconstructReport:
    """All results of one run plus what ran them."""

    results: list[FileResult]
    seconds: float
    model: str | None = None
    weights: str | None = None
    backend: str | None = None
    device: str | None = None

    @property
    def failed(self) -> list[FileResult]:
        """Results with an error."""
        return [r for r in self.results if r.error is not None]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        n_skipped = sum(r.skipped for r in self.results)
        return {
            "results": [r.to_dict() for r in self.results],
            "summary": {
                "total": len(self.results),
                "ok": len(self.results) - len(self.failed) - n_skipped,
                "skipped": n_skipped,
                "failed": len(self.failed),
                "seconds": round(self.seconds, 3),
                "model": self.model,
                "weights": self.weights,
                "backend": self.backend,
                "device": self.device,
            },
        }


# --------------------------------------------------------------------------- weights and backend


def default_weight_dirs() -> list[Path]:
    """Folders searched for the shipped checkpoint: <repo>/weights and recon_cli/weights."""
    import recon_cli

    package = Path(recon_cli.__file__).resolve().parent
    return [package.parent / "weights", package / "weights"]


def find_weights(weights: Path | None, *, default: str = DEFAULT_WEIGHTS) -> Path:
    """The checkpoint to use: ``weights`` if given (must exist), else the shipped ``default`` file."""
    if weights is not None:
        weights = Path(weights)
        if weights.is_dir():
            found = sorted(p.name for p in weights.glob("*.pt"))[:4]
            hint = f" (it holds {', '.join(found)})" if found else " (it holds no .pt file)"
            raise CheckpointError(f"is a folder; --weights takes a checkpoint file such as best.pt{hint}",
                                  path=weights)
        if not weights.is_file():
            raise CheckpointError("no such checkpoint file", path=weights)
        return weights
    for folder in default_weight_dirs():
        candidate = folder / default
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(d / default) for d in default_weight_dirs())
    raise CheckpointError(
        f"no weights found: pass --weights PATH (a checkpoint from `recon train`, e.g. runs/x/best.pt) "
        f"or put one at {looked}"
    )


def make_backend(options: ReconstructOptions) -> tuple[Backend, str]:
    """Build the runtime; returns it and a description of the weights used.

    ``auto`` is torch: with the shipped decoder size torch (bfloat16 where the CPU
    has it, float32 otherwise) measured at least as fast as onnxruntime here
    (benchmarks/bench_speed.py records both). ``onnx`` without ``onnx_dir``
    exports the checkpoint once into the user cache (:mod:`recon_cli.runtime.onnx_cache`).
    """
    if options.backend not in BACKENDS:
        raise ConfigError(f"unknown backend {options.backend!r}; valid: {', '.join(BACKENDS)}")
    if options.backend == "onnx":
        try:
            from recon_cli.runtime.onnx_backend import OnnxBackend
        except ImportError as exc:
            raise ConfigError(
                f"the ONNX backend needs onnxruntime ({exc}); install it with: pip install 'recon-cli[onnx]'"
            ) from exc
        onnx_dir = options.onnx_dir
        if onnx_dir is None:
            from recon_cli.runtime.onnx_cache import cached_export

            onnx_dir = cached_export(find_weights(options.weights))
        try:
            backend = OnnxBackend(onnx_dir, device=options.device, threads=options.threads)
        except ImportError as exc:
            raise ConfigError(
                f"the ONNX backend needs onnxruntime ({exc}); install it with: pip install 'recon-cli[onnx]'"
            ) from exc
        return backend, str(onnx_dir)
    from recon_cli.runtime.torch_backend import TorchBackend

    path = find_weights(options.weights)
    return TorchBackend.from_checkpoint(path, device=options.device, threads=options.threads,
                                        precision=options.precision), str(path)


def _stages(model: str, backend: Backend, *, points: bool) -> str:
    """Reconstructor stages for ``--model`` and the input kind; InputError when impossible."""
    stages = MODEL_STAGES[model]
    if points:
        if stages == "1":
            raise InputError("--model onet has no point-cloud stage; --points needs onet-pcl or doccnet")
        if not backend.has_stage2:
            raise InputError("these weights have no point-cloud stage (stage 2), so --points cannot be used")
        return "auto"
    if stages == "2" or not backend.has_stage1:
        raise InputError("an onet-pcl model reconstructs point clouds: give them with --points")
    if stages in ("1+2", "blend") and not backend.has_stage2:
        raise InputError("--model doccnet needs weights with both stages; these have only the image stage")
    return stages


# --------------------------------------------------------------------------- point clouds


def load_point_cloud(path: str | Path) -> np.ndarray:
    """(N, 3) float64 points from .ply/.obj/.off (vertices), .xyz/.txt, .npy or .npz ('points')."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such point cloud file", path=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "points" not in data:
                    raise InputError(f"npz holds no 'points' array (keys: {', '.join(data.files)})", path=path)
                arr = data["points"]
        elif suffix in (".xyz", ".txt"):
            arr = _load_text_points(path)
        elif suffix in (".ply", ".obj", ".off"):
            import trimesh

            loaded = trimesh.load(str(path), process=False)
            geoms = list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) else [loaded]
            arr = np.concatenate([np.asarray(g.vertices) for g in geoms if hasattr(g, "vertices")] or [np.zeros((0, 3))])
        else:
            raise InputError(f"unsupported point cloud suffix {suffix!r}; use one of {', '.join(POINT_SUFFIXES)}", path=path)
    except ReconError:
        raise
    except Exception as exc:  # numpy / trimesh raise many types for bad files
        raise InputError(f"cannot read point cloud ({type(exc).__name__}: {exc})".splitlines()[0], path=path) from exc
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size == 0:
        raise InputError("the point cloud file holds no points", path=path)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise InputError(f"expected an (N, 3) array of points, got shape {arr.shape}", path=path)
    arr = arr[:, :3]
    arr = arr[np.isfinite(arr).all(axis=1)]
    if len(arr) < 4:
        raise InputError(f"the point cloud has {len(arr)} finite points; at least 4 are needed", path=path)
    return arr


def _load_text_points(path: Path) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below as 0 points
        try:
            return np.loadtxt(path, ndmin=2, comments="#")
        except ValueError:
            return np.loadtxt(path, ndmin=2, comments="#", delimiter=",")


def normalize_cloud(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Points (N, 3) -> (unit-frame points, bbox centre (3,), scale = longest side)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = (lo + hi) / 2.0
    scale = float((hi - lo).max())
    if scale <= 0:
        raise InputError("all points coincide; the cloud has no extent")
    return ((points - centre) / scale).astype(np.float32), centre, scale


# --------------------------------------------------------------------------- the run


@dataclass
class _Pending:
    job: Job
    result: FileResult
    started: float
    data: Any = None  # image tensor (3,S,S), or (cloud, centre, scale)
    network_image: Any = None
    mask_image: Any = None  # the mask used (PIL "L", the photo's full size) for --save-mask
    is_points: bool = False
    prep_seconds: float = 0.0


def reconstruct_files(
    inputs: Sequence[str | Path] = (),
    *,
    output: Path | None = None,
    out_dir: Path | None = None,
    points: Sequence[str | Path] = (),
    options: ReconstructOptions | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> ReconstructReport:
    """Reconstruct image files (``inputs``) or point clouds (``points``); see the module docstring."""
    opts = options if options is not None else ReconstructOptions()
    start = time.perf_counter()
    _validate(opts, inputs, points)
    _check_outputs(output, out_dir)
    from recon_cli.pipeline import ExtractOptions

    extract = ExtractOptions(
        resolution0=opts.resolution, upsampling_steps=opts.upsampling_steps,
        threshold=opts.threshold, simplify_faces=opts.simplify_faces,
    )
    is_points = bool(points)
    items = expand_inputs(points if is_points else inputs, recursive=opts.recursive,
                          suffixes=POINT_SUFFIXES if is_points else IMAGE_SUFFIXES)
    if not items:
        raise InputError("no input files found (folders are searched for " + ", ".join(IMAGE_SUFFIXES) + ")")
    index, count = opts.shard
    items = items[index::count]
    if opts.mask is not None and len(items) > 1:
        raise InputError(f"--mask is the mask of one photo, but {len(items)} images were given")
    jobs = plan_jobs([it.path for it in items], output=output, out_dir=out_dir, fmt=opts.fmt)
    errors = {i: it.error for i, it in enumerate(items) if it.error}
    if on_start is not None:
        on_start(len(jobs))
    results: list[FileResult] = []
    todo: list[Job] = []
    for i, job in enumerate(jobs):
        early = _early_result(job, errors.get(i), skip_existing=opts.skip_existing)
        if early is None:
            todo.append(job)
        else:
            results.append(_report(early, on_result))
    report = ReconstructReport(results, 0.0, model=opts.model, backend=opts.backend)
    if todo:
        preload_modules(PIPELINE_MODULES if is_points else PIPELINE_MODULES + IMAGE_MODULES)
        rec, weights = make_reconstructor(opts, extract, points=is_points)
        report.weights, report.device = weights, str(rec.backend.device)
        report.backend = "onnx" if opts.backend == "onnx" else "torch"  # what auto resolved to
        opts = dataclasses.replace(opts, threshold=rec.options.threshold)  # the checkpoint's, when not given
        size = _batch_size(opts, rec.backend)
        batches = [todo[s : s + size] for s in range(0, len(todo), size)]
        for result in _run_pipelined(rec, batches, opts, is_points=is_points):
            results.append(_report(result, on_result))
    order = {str(job.input): k for k, job in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.input, len(order)))
    report.results = results
    report.seconds = time.perf_counter() - start
    return report


def make_reconstructor(opts: ReconstructOptions, extract: Any, *, points: bool = False) -> tuple[Any, str]:
    """The reconstructor ``opts`` ask for (occupancy stages or the voxel model) and the weights' description."""
    if opts.model == "r2n2":
        if points:
            raise InputError("the r2n2 model reconstructs from photos; --points needs onet-pcl or doccnet")
        from recon_cli.voxel import load_voxel_reconstructor

        return load_voxel_reconstructor(opts.weights, options=extract, device=opts.device, threads=opts.threads,
                                        backend=opts.backend)
    from recon_cli.pipeline import Reconstructor

    backend, weights = make_backend(opts)
    stages = _stages(opts.model, backend, points=points)
    return Reconstructor(backend, options=extract, stages="auto" if stages == "2" else stages, seed=opts.seed), weights


#: Modules a run needs besides torch; imported on a helper thread while torch loads.
PIPELINE_MODULES: tuple[str, ...] = ("trimesh", "recon_cli.io.mesh")
IMAGE_MODULES: tuple[str, ...] = ("recon_cli.io.images", "recon_cli.io.segment", "scipy.ndimage", "skimage.color",
                                  "skimage.filters")


def preload_modules(names: Sequence[str]) -> None:
    """Import ``names`` on a daemon thread, to overlap with the caller's own imports (torch).

    Start-up is mostly imports (torch about 1-2 s, trimesh and scipy about 1 s more on a
    2-core machine); part of it is disk and dynamic loading, which overlaps. The caller
    imports what it needs as usual (Python's per-module import locks make the two safe),
    and a failure here is ignored: the real import reports it.
    """
    import importlib
    import threading

    def run() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the caller's own import will raise it properly
                pass

    threading.Thread(target=run, name="recon-preload", daemon=True).start()


def _validate(opts: ReconstructOptions, inputs: Sequence[Any], points: Sequence[Any]) -> None:
    if opts.model not in MODEL_STAGES:
        raise InputError(f"unknown model {opts.model!r}; valid: {', '.join(MODEL_STAGES)}")
    if inputs and points:
        raise InputError("give images or --points clouds, not both")
    from recon_cli.io.segment import SEGMENT_METHODS

    if opts.segment not in SEGMENT_METHODS:
        raise InputError(f"unknown segmentation method {opts.segment!r}; valid: {', '.join(SEGMENT_METHODS)}")
    if opts.mask is not None and points:
        raise InputError("--mask applies to a photo, not to --points clouds")
    if not inputs and not points:
        raise InputError("no inputs: give image files, folders or globs (or --points CLOUD)")
    if opts.batch_size is not None and opts.batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {opts.batch_size}")
    index, count = opts.shard
    if count < 1 or not 0 <= index < count:
        raise InputError(f"bad shard {index}/{count}: need 0 <= I < N")


def _check_outputs(output: Path | None, out_dir: Path | None) -> None:
    """Fail before any image is computed when the output path can never be written."""
    from recon_cli.io.paths import check_output_file, check_output_folder

    if out_dir is not None:
        check_output_folder(out_dir)
    if output is not None:
        check_output_file(output)


def _report(result: FileResult, on_result: Callable[[FileResult], None] | None) -> FileResult:
    if on_result is not None:
        on_result(result)
    return result


def _early_result(job: Job, error: str | None, *, skip_existing: bool) -> FileResult | None:
    """A result decided before any work: expansion errors, refused paths, existing outputs."""
    if error is not None:
        return FileResult(str(job.input), None, error=f"{job.input}: {error}")
    if job.error is not None:
        return FileResult(str(job.input), None, error=f"{job.input}: {job.error}")
    if skip_existing and job.output.is_file() and job.output.stat().st_size > 0:
        return FileResult(str(job.input), str(job.output), skipped=True)
    return None


def _batch_size(opts: ReconstructOptions, backend: Backend) -> int:
    """Images per network batch: ``batch_size``, or with None 1 on the CPU (each shape is decoded on
    its own there, so batching gains nothing and only delays the first result) and 4 on a GPU."""
    if opts.batch_size is not None:
        return max(1, opts.batch_size)
    return 1 if backend.device.type == "cpu" else 4


def _compute_slots(backend: Backend) -> int:
    """Batches reconstructed at the same time: 2 on a CPU with 2+ decoder threads, else 1.

    Between decoder rounds each reconstruction does serial work (MISE bookkeeping,
    marching cubes, point sampling); with two in flight, one's serial work overlaps
    the other's decoding. Each shape's mesh never depends on what runs beside it.
    """
    if backend.device.type != "cpu":
        return 1
    return 2 if int(getattr(backend, "threads", 1)) >= 2 else 1


def _run_pipelined(rec: Reconstructor, batches: Sequence[Sequence[Job]], opts: ReconstructOptions, *,
                   is_points: bool) -> Iterator[FileResult]:
    """Run the batches with reading and writing overlapping the network work; yield results in order.

    One I/O thread decodes the images of the next batches and writes the
    meshes of finished ones while the network works; up to
    :func:`_compute_slots` batches are reconstructed at once. Results are
    yielded in input order as soon as a batch's meshes are written. Writes stay
    atomic (:func:`recon_cli.io.mesh.save_mesh`) and a failure stays with its file.
    """
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    n = len(batches)
    if not n:
        return
    from recon_cli.runtime.threads import torch_threads

    slots = _compute_slots(rec.backend)
    intra_op = 1 if rec.backend.device.type == "cpu" else None  # the decoder's workers are single-threaded
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recon-io") as io, \
            ThreadPoolExecutor(max_workers=slots, thread_name_prefix="recon-compute") as compute, \
            (torch_threads(intra_op) if intra_op else contextlib.nullcontext()):
        prepared: list[Future[list[_Pending]]] = []

        def prepare(batch: Sequence[Job]) -> list[_Pending]:
            return [_prepare(job, rec.backend, opts, is_points=is_points) for job in batch]

        def prepare_up_to(count: int) -> None:
            while len(prepared) < min(count, n):
                prepared.append(io.submit(prepare, batches[len(prepared)]))

        def work(k: int) -> tuple[list[_Pending], list[Future[None]]]:
            pending = prepared[k].result()
            pairs = _compute_batch(rec, pending, is_points=is_points)
            return pending, [io.submit(_write_safely, p, r, opts) for p, r in pairs]

        prepare_up_to(slots + 1)
        running = deque(compute.submit(work, k) for k in range(min(slots, n)))
        launched = len(running)
        while running:
            pending, writes = running.popleft().result()
            if launched < n:
                prepare_up_to(launched + 2)
                running.append(compute.submit(work, launched))
                launched += 1
            for future in writes:
                future.result()
            yield from (p.result for p in pending)


def _compute_batch(rec: Reconstructor, pending: Sequence[_Pending], *, is_points: bool
                   ) -> list[tuple[_Pending, Reconstruction]]:
    """Reconstruct the prepared inputs of one batch; per-file failures stay per file.

    Returns the (input, reconstruction) pairs to write.
    """
    ready = [p for p in pending if p.result.error is None]
    if not ready:
        return []
    try:
        return list(zip(ready, _reconstruct(rec, ready, is_points=is_points)))
    except Exception:  # isolate the file that breaks the batch
        pass
    out = []
    for p in ready:
        r = _reconstruct_one(rec, p, is_points=is_points)
        if r is not None:
            out.append((p, r))
    return out


def _reconstruct_one(rec: Reconstructor, p: _Pending, *, is_points: bool) -> Reconstruction | None:
    """One input on its own; None (and the file's error set) when it fails."""
    try:
        (r,) = _reconstruct(rec, [p], is_points=is_points)
    except ReconError as exc:
        p.result.error = _message(p.job, exc)
        return None
    except Exception as exc:  # a model/runtime failure on this input
        p.result.error = f"{p.job.input}: reconstruction failed ({type(exc).__name__}: {exc})".splitlines()[0]
        return None
    return r


def _reconstruct(rec: Reconstructor, ready: Sequence[_Pending], *, is_points: bool) -> list[Reconstruction]:
    import torch

    if is_points:
        return rec.reconstruct_points([p.data[0] for p in ready])
    return rec.reconstruct_images(torch.stack([p.data for p in ready]))  # (B, 3, S, S)


def _message(job: Job, exc: ReconError) -> str:
    text = str(exc)
    return text if exc.path is not None else f"{job.input}: {text}"


def _prepare(job: Job, backend: Backend, opts: ReconstructOptions, *, is_points: bool) -> _Pending:
    result = FileResult(str(job.input), str(job.output))
    pending = _Pending(job, result, time.perf_counter(), is_points=is_points)
    try:
        if is_points:
            pending.data = normalize_cloud(load_point_cloud(job.input))
        else:
            from recon_cli.io.images import WORK_SIZE, load_mask, mask_image, prepare_image, read_image

            loaded = read_image(job.input, max_pixels=opts.max_pixels, draft=WORK_SIZE)
            user_mask = None if opts.mask is None else load_mask(opts.mask, loaded.full_size, max_pixels=opts.max_pixels)
            prepared = prepare_image(loaded.image, size=backend.image_size, mask=user_mask,
                                     segment=opts.segment if opts.remove_bg else "none")
            result.warnings.extend(loaded.warnings + prepared.warnings)
            pending.data, pending.network_image = prepared.tensor, prepared.image
            if opts.save_mask and prepared.mask is not None:
                pending.mask_image = mask_image(prepared.mask, loaded.full_size)
    except ReconError as exc:
        result.error = _message(job, exc)
        result.output = None
    except Exception as exc:  # never a traceback for one bad file
        result.error = f"{job.input}: cannot prepare input ({type(exc).__name__}: {exc})".splitlines()[0]
        result.output = None
    pending.prep_seconds = time.perf_counter() - pending.started
    return pending


def _write_safely(p: _Pending, r: Reconstruction, opts: ReconstructOptions) -> None:
    """:func:`_write` on the I/O thread: any failure becomes this file's error, never the batch's."""
    try:
        _write(p, r, opts)
    except Exception as exc:  # noqa: BLE001 - one file's problem, reported by name
        p.result.error = f"{p.job.output}: cannot write mesh ({type(exc).__name__}: {exc})".splitlines()[0]
        p.result.output = None


def _write(p: _Pending, r: Reconstruction, opts: ReconstructOptions) -> None:
    """Save the mesh (and the optional side files) atomically; fill in the result."""
    from recon_cli.io.mesh import save_mesh

    job, result = p.job, p.result
    mesh, stage1, cloud = r.mesh, r.stage1_mesh, r.points
    started = time.perf_counter()
    if p.is_points:  # point cloud: back to the user's frame
        _, centre, scale = p.data
        mesh = _scaled(mesh, centre, scale)
        stage1 = None
        cloud = None if cloud is None else np.asarray(cloud) * scale + centre
    try:
        if not p.is_points and len(mesh.faces) and fills_cube(mesh):
            result.error = (f"{job.input}: suspicious reconstruction: the mesh fills the whole reconstruction cube "
                            "(no object was seen; check the mask with --save-mask, or give one with --mask FILE)")
            result.output = None
            result.seconds = round(p.prep_seconds + r.seconds + time.perf_counter() - started, 4)
            return
        if opts.save_input and p.network_image is not None:
            result.files.append(str(_save_png(p.network_image, job.sidecar("input", ".png"))))
        if opts.save_mask and p.mask_image is not None:
            mask_path = job.output.with_name(f"{job.output.stem}_mask.png")
            result.files.append(str(_save_png(p.mask_image, mask_path)))
        if opts.save_stages:
            if stage1 is not None and len(stage1.faces) == 0:
                result.warnings.append("stage 1 gave an empty mesh; no .stage1 file written")
            elif stage1 is not None:
                result.files.append(str(save_mesh(stage1, job.sidecar("stage1", "." + job.fmt), fmt=job.fmt)))
            if cloud is not None and len(cloud):
                result.files.append(str(_save_points(np.asarray(cloud), job.sidecar("points", ".ply"))))
        if len(mesh.faces) == 0:
            from recon_cli.pipeline import empty_message

            result.error = f"{job.input}: " + empty_message(opts.threshold, r.peak_probability, option="--threshold")
            result.output = None
        else:
            save_mesh(mesh, job.output, fmt=job.fmt)
            result.vertices, result.faces = len(mesh.vertices), len(mesh.faces)
            result.watertight = bool(mesh.is_watertight)
    except ReconError as exc:
        result.error, result.output = _message(job, exc), None
    except OSError as exc:
        result.error, result.output = f"{job.output}: cannot write ({exc.strerror or exc})", None
    result.seconds = round(p.prep_seconds + r.seconds + time.perf_counter() - started, 4)


#: A mesh whose bounding box spans more than this share of the reconstruction cube on every axis
#: "fills the cube": training objects are normalised to a longest side of 1 inside the 1.1 cube, so
#: even a cube-shaped object spans at most 1/1.1 = 91% of it on each axis.
CUBE_FILL: float = 0.97


def fills_cube(mesh: trimesh.Trimesh, *, padding: float | None = None) -> bool:
    """True when ``mesh`` reaches (nearly) all six faces of the reconstruction cube: junk, not an object."""
    from recon_cli.extract.grid import PADDING, box_size

    extent = np.ptp(np.asarray(mesh.vertices), axis=0)  # (3,)
    return bool((extent >= CUBE_FILL * box_size(PADDING if padding is None else padding)).all())


def _scaled(mesh: trimesh.Trimesh, centre: np.ndarray, scale: float) -> trimesh.Trimesh:
    out = mesh.copy()
    if len(out.vertices):
        out.vertices = np.asarray(out.vertices) * scale + centre
    return out


def _save_png(image: Any, path: Path) -> Path:
    from recon_cli.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def _save_points(points: np.ndarray, path: Path) -> Path:
    import trimesh

    from recon_cli.io.atomic import atomic_write_bytes

    data = trimesh.PointCloud(points).export(file_type="ply", encoding="binary")
    atomic_write_bytes(path, data if isinstance(data, bytes) else data.encode("utf-8"))
    return path
