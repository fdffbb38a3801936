"""The Python API: load a model once, reconstruct photos to :class:`trimesh.Trimesh` meshes.

    >>> from recon_cli import load_model
    >>> model = load_model()                      # the shipped weights, CPU or CUDA
    >>> mesh = model.reconstruct("chair.png")     # a trimesh.Trimesh in the normalised frame
    >>> mesh.export("chair.obj")

Inputs are image paths, PIL images or numpy arrays (H x W, H x W x 3 or H x W x 4;
uint8, or floats in [0, 1]). They go through exactly the preprocessing of
``recon reconstruct``: size cap before decoding, EXIF orientation, alpha or
background removal, framing like the training renders. Several photos of one
object are fused with ``reconstruct([a, b, c], fuse=True)`` (see
:mod:`recon_cli.fusion`). Problems raise :class:`recon_cli.errors.ReconError`
subclasses whose message is one line naming the input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from recon_cli.errors import InputError, ReconError
from recon_cli.io.images import MAX_PIXELS

if TYPE_CHECKING:
    import torch
    import trimesh
    from PIL import Image

    from recon_cli.fusion import MultiViewReconstructor
    from recon_cli.pipeline import Reconstruction
    from recon_cli.runtime.base import Backend

#: What :meth:`ReconModel.reconstruct` accepts as one photo.
ImageInput = Union[str, "os.PathLike[str]", "Image.Image", np.ndarray]

__all__ = ["EmptyReconstructionError", "ImageInput", "PreparedView", "ReconModel", "ReconResult",
           "SuspiciousReconstructionError", "load_model"]


class EmptyReconstructionError(InputError):
    """The model found no surface above the threshold for this input."""


class SuspiciousReconstructionError(InputError):
    """The mesh fills the whole reconstruction cube: the model saw no object (a bad mask or photo)."""


@dataclass
class PreparedView:
    """One photo as the network sees it."""

    source: str                   #: the path, or "<PIL image>" / "<array>" (with its index in a list)
    tensor: torch.Tensor          #: (3, S, S) float32 RGB in [0, 1], on white
    image: Image.Image            #: the same as a PIL image (what ``--save-input`` writes)
    mask: np.ndarray | None       #: (H, W) float32 soft object mask on the working copy, None when unmasked
    method: str                   #: "mask" (yours), "alpha", "border", "grabcut" or "none"
    warnings: list[str] = field(default_factory=list)


@dataclass
class ReconResult:
    """A reconstruction with its intermediate results (``return_details=True``)."""

    mesh: trimesh.Trimesh                  #: the final mesh (normalised frame: longest side ~1, +y up)
    stage1_mesh: trimesh.Trimesh | None    #: the OccNet (image stage) mesh; None for stage-1-only models
    points: np.ndarray | None              #: the (300, 3) points that fed stage 2, or None
    views: list[PreparedView]              #: the prepared input photo(s)
    seconds: float                         #: wall time, preprocessing included
    fusion: str | None = None              #: fusion strategy when several views were fused

    @property
    def mask(self) -> np.ndarray | None:
        """The object mask of the (first) photo."""
        return self.views[0].mask if self.views else None

    @property
    def warnings(self) -> list[str]:
        """Warnings of every view (animated input, no clear object found...)."""
        return [w for v in self.views for w in v.warnings]


def _source_name(x: Any, index: int | None = None) -> str:
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    kind = "<array>" if isinstance(x, np.ndarray) else "<PIL image>" if hasattr(x, "getbands") else "<input>"
    return kind if index is None else f"{kind}[{index}]"


def _array_to_image(arr: np.ndarray, name: str, max_pixels: int) -> Image.Image:
    from PIL import Image

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"expected an H x W, H x W x 3 or H x W x 4 image array, got shape {arr.shape}", path=name)
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise InputError("image has no pixels", path=name)
    if h * w > max_pixels:
        raise InputError(f"image too large: {w}x{h} = {w * h:,} pixels (limit {max_pixels:,})", path=name)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InputError("image array holds NaN or infinite values", path=name)
        top = 1.0 if arr.max(initial=0.0) <= 1.0 else 255.0
        arr = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InputError(f"unsupported image array dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])",
                         path=name)
    return Image.fromarray(np.ascontiguousarray(arr))


@dataclass(frozen=True)
class _Settings:
    segment: str
    max_pixels: int
    batch_size: int


class ReconModel:
    """A loaded reconstruction model; make one with :func:`load_model`.

    Attributes: ``weights`` (what was loaded), ``device`` (torch device),
    ``stages`` ("1" = OccNet image stage only, "1+2" = D-OccNet, "auto").
    Not thread-safe: use one model per thread (``recon serve`` queues requests).
    """

    def __init__(self, backend: Backend, reconstructor: MultiViewReconstructor, *, weights: str, stages: str,
                 settings: _Settings) -> None:
        self.backend = backend
        self.reconstructor = reconstructor
        self.weights = weights
        self.stages = stages
        self._settings = settings

    @property
    def device(self) -> torch.device:
        """The torch device the networks run on."""
        return self.backend.device

    @property
    def image_size(self) -> int:
        """Side of the square network input in pixels."""
        return self.backend.image_size

    def __repr__(self) -> str:
        return f"ReconModel(weights={self.weights!r}, device={str(self.device)!r}, stages={self.stages!r})"

    # -- inputs ---------------------------------------------------------------------------------
    def prepare(self, x: ImageInput, *, mask: np.ndarray | None = None, index: int | None = None) -> PreparedView:
        """Load (path), validate and preprocess one photo: mask, framing, network input.

        ``mask`` is your own object mask (H x W, True / > 0.5 = object, the photo's size or
        proportional to it) instead of the automatic segmentation. Raises :class:`InputError`
        naming the input for unreadable, oversized, blank or object-less images.
        """
        from PIL import Image

        from recon_cli.io.images import WORK_SIZE, prepare_image, read_image, to_8bit

        name = _source_name(x, index)
        cap = self._settings.max_pixels
        notes: list[str] = []
        if isinstance(x, (str, os.PathLike)):
            loaded = read_image(Path(x), max_pixels=cap, draft=WORK_SIZE)
            image, notes = loaded.image, list(loaded.warnings)
        elif isinstance(x, Image.Image):
            if x.width * x.height > cap:
                raise InputError(f"image too large: {x.width}x{x.height} = {x.width * x.height:,} pixels "
                                 f"(limit {cap:,})", path=name)
            if x.width == 0 or x.height == 0:
                raise InputError("image has no pixels", path=name)
            image = to_8bit(x)
        elif isinstance(x, np.ndarray):
            image = to_8bit(_array_to_image(x, name, cap))
        else:
            raise InputError(f"expected a path, PIL image or numpy array, got {type(x).__name__}", path=name)
        try:
            prepared = prepare_image(image, size=self.backend.image_size, segment=self._settings.segment,
                                     mask=None if mask is None else np.asarray(mask))
        except ReconError as exc:
            raise InputError(exc.message, path=name) from exc
        return PreparedView(name, prepared.tensor, prepared.image, prepared.mask, prepared.method,
                            notes + prepared.warnings)

    def _views(self, xs: Sequence[ImageInput]) -> list[PreparedView]:
        return [self.prepare(x, index=i if len(xs) > 1 else None) for i, x in enumerate(xs)]

    # -- reconstruction -------------------------------------------------------------------------
    def reconstruct(self, x: ImageInput | Sequence[ImageInput], *, fuse: bool = False, fusion: str | None = None,
                    mask: np.ndarray | None = None, return_details: bool = False) -> trimesh.Trimesh | ReconResult:
        """Reconstruct one object: a mesh (or a :class:`ReconResult` with ``return_details=True``).

        ``x`` is one photo, or with ``fuse=True`` a list of photos of the same
        object, fused by ``fusion`` (``"logits"`` by default, ``"code"`` or
        ``"cloud"``; see :mod:`recon_cli.fusion`). Use :meth:`reconstruct_many`
        for several objects. ``mask``: your object mask for a single photo (see
        :meth:`prepare`). Raises :class:`EmptyReconstructionError` when no
        surface is found, other :class:`ReconError` subclasses for bad inputs.
        """
        many = isinstance(x, (list, tuple))
        if many and not fuse:
            raise InputError("several inputs given: pass fuse=True to fuse photos of one object, "
                             "or use reconstruct_many() for separate objects")
        items: list[ImageInput] = list(x) if many else [x]  # type: ignore[arg-type]
        if not items:
            raise InputError("no input photos given")
        if mask is not None and len(items) != 1:
            raise InputError(f"a mask is the mask of one photo, but {len(items)} photos were given")
        start = time.perf_counter()
        views = [self.prepare(items[0], mask=mask)] if mask is not None else self._views(items)
        result = self._run([views], fusion=fusion if fuse else None)[0]
        result.seconds = time.perf_counter() - start
        return result if return_details else result.mesh

    def reconstruct_prepared(self, views: Sequence[PreparedView], *, fuse: bool = False,
                             fusion: str | None = None) -> ReconResult:
        """Reconstruct one object from views made by :meth:`prepare` (several need ``fuse=True``)."""
        views = list(views)
        if not views:
            raise InputError("no input photos given")
        if len(views) > 1 and not fuse:
            raise InputError("several views given: pass fuse=True to fuse photos of one object")
        start = time.perf_counter()
        result = self._run([views], fusion=fusion if fuse else None)[0]
        result.seconds = time.perf_counter() - start
        return result

    def reconstruct_many(self, inputs: Iterable[ImageInput], *, return_details: bool = False,
                         return_exceptions: bool = False,
                         on_result: Callable[[int, trimesh.Trimesh | ReconResult | ReconError], None] | None = None,
                         ) -> list[Any]:
        """Reconstruct each input as its own object, in batches of ``batch_size`` (see :func:`load_model`).

        Returns meshes (or :class:`ReconResult` with ``return_details=True``) in
        input order. A bad input raises its :class:`ReconError` unless
        ``return_exceptions=True``, which puts the error in its place and goes on.
        ``on_result(index, item)`` is called as each input finishes.
        """
        items = list(inputs)
        out: list[Any] = [None] * len(items)

        def done(i: int, item: Any) -> None:
            if isinstance(item, ReconError) and not return_exceptions:
                raise item
            if isinstance(item, ReconResult) and not return_details:
                item = item.mesh
            out[i] = item
            if on_result is not None:
                on_result(i, item)

        step = self._settings.batch_size
        for s in range(0, len(items), step):
            ready: list[tuple[int, PreparedView]] = []
            for i in range(s, min(s + step, len(items))):
                try:
                    ready.append((i, self.prepare(items[i])))
                except ReconError as exc:
                    done(i, exc)
            if not ready:
                continue
            start = time.perf_counter()
            results = self._run_isolated([[v] for _, v in ready])
            share = (time.perf_counter() - start) / len(ready)
            for (i, _), res in zip(ready, results):
                if isinstance(res, ReconResult):
                    res.seconds = share
                done(i, res)
        return out

    def reconstruct_points(self, points: np.ndarray | str | os.PathLike[str]) -> trimesh.Trimesh:
        """Stage 2 (point-cloud encoder) on a cloud: an (N, 3) array or a point file; mesh in the cloud's frame."""
        from recon_cli.reconstruct import load_point_cloud, normalize_cloud

        cloud = load_point_cloud(points) if isinstance(points, (str, os.PathLike)) else np.asarray(points, float)
        if cloud.ndim != 2 or cloud.shape[1] != 3 or len(cloud) < 4 or not np.all(np.isfinite(cloud)):
            raise InputError(f"expected an (N >= 4, 3) array of finite points, got shape {cloud.shape}")
        unit, centre, scale = normalize_cloud(cloud)
        rec = self.reconstructor.reconstruct_points([unit])[0]
        if rec.empty:
            raise EmptyReconstructionError(self._empty_message(rec), path=_source_name(points))
        mesh = rec.mesh.copy()
        mesh.vertices = np.asarray(mesh.vertices) * scale + centre
        return mesh

    def _empty_message(self, rec: Reconstruction) -> str:
        from recon_cli.pipeline import empty_message

        return empty_message(self.reconstructor.options.threshold, rec.peak_probability)

    def _run_isolated(self, sets: list[list[PreparedView]]) -> list[ReconResult | ReconError]:
        """Like :meth:`_run` but a failing batch is retried one object at a time."""
        try:
            return self._run(sets, fusion=None, raise_empty=False)
        except Exception:  # noqa: BLE001 - isolate the input that breaks the batch
            if len(sets) == 1:
                raise
        out: list[ReconResult | ReconError] = []
        for views in sets:
            try:
                out.extend(self._run([views], fusion=None, raise_empty=False))
            except ReconError as exc:
                out.append(exc)
            except Exception as exc:  # noqa: BLE001 - a runtime failure on this input
                out.append(ReconError(f"reconstruction failed ({type(exc).__name__}: {exc})".splitlines()[0],
                                      path=views[0].source))
        return out

    def _run(self, sets: list[list[PreparedView]], *, fusion: str | None, raise_empty: bool = True) -> list[Any]:
        import torch

        from recon_cli.fusion import DEFAULT_FUSION
        from recon_cli.reconstruct import fills_cube

        start = time.perf_counter()
        if fusion is None and all(len(v) == 1 for v in sets):
            recs = self.reconstructor.reconstruct_images(torch.stack([v[0].tensor for v in sets]))
        else:
            fusion = fusion or DEFAULT_FUSION
            recs = self.reconstructor.reconstruct_views([torch.stack([p.tensor for p in v]) for v in sets],
                                                        fusion=fusion)
        seconds = time.perf_counter() - start
        out: list[Any] = []
        for views, rec in zip(sets, recs):
            if rec.empty:
                names = ", ".join(v.source for v in views)
                err = EmptyReconstructionError(self._empty_message(rec), path=names)
            elif fills_cube(rec.mesh):
                names = ", ".join(v.source for v in views)
                err = SuspiciousReconstructionError(
                    "suspicious reconstruction: the mesh fills the whole reconstruction cube (no object was seen; "
                    "check the mask with return_details=True, or pass your own mask)", path=names)
            else:
                err = None
            if err is not None:
                if raise_empty:
                    raise err
                out.append(err)
                continue
            out.append(_result(rec, views, seconds / len(sets), fusion))
        return out


def _result(rec: Reconstruction, views: list[PreparedView], seconds: float, fusion: str | None) -> ReconResult:
    return ReconResult(rec.mesh, rec.stage1_mesh, rec.points, views, seconds, fusion)


def load_model(
    weights: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    threads: int | None = None,
    model: str = "auto",
    quality: str = "standard",
    threshold: float | None = None,
    resolution: int | None = None,
    upsampling_steps: int | None = None,
    simplify: int | None = None,
    segment: str = "auto",
    remove_bg: bool = True,
    batch_size: int = 4,
    seed: int = 0,
    backend: str = "torch",
    onnx_dir: str | os.PathLike[str] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> ReconModel:
    """Load a reconstruction model (the shipped ``weights/doccnet.pt`` when ``weights`` is None).

    Args:
        weights: a checkpoint from ``recon train`` (``best.pt``), or None for the shipped default.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        threads: CPU threads of the networks (decoder workers, see ``recon reconstruct --threads``);
            None = ``$RECON_THREADS``, else 2 or fewer cores.
        model: stages to run, as ``recon reconstruct --model``: "auto", "onet" (image stage only), "doccnet"
            or "blend" (both, the final field blended with stage 1's);
            "r2n2" loads the voxel model instead (the shipped ``weights/r2n2.pt`` when ``weights`` is None).
        quality: "draft" (65^3), "standard" (129^3) or "high" (257^3) extraction lattice;
            ``resolution`` / ``upsampling_steps`` override it.
        threshold: occupancy probability of the surface (0 < p < 1); None = the one the weights
            were tuned for on validation (0.2 for weights that store none).
        simplify: simplify meshes to about this many faces.
        segment: how opaque photos are segmented: "auto", "border", "grabcut" or "none"
            (see ``recon reconstruct --segment``); an alpha channel is always used.
        remove_bg: False is the same as ``segment="none"``.
        batch_size: images per forward / MISE batch in :meth:`ReconModel.reconstruct_many`.
        seed: seed of the stage-2 point sampling (same photo, same mesh).
        backend: "torch", or "onnx" with ``onnx_dir`` made by ``recon export-onnx``.
        max_pixels: inputs with more pixels are refused before decoding.

    Raises:
        CheckpointError: missing or bad weights; ConfigError / InputError: bad options.
    """
    from recon_cli.fusion import MultiViewReconstructor
    from recon_cli.pipeline import QUALITY_PRESETS, ExtractOptions
    from recon_cli.reconstruct import ReconstructOptions, _stages, make_backend

    if quality not in QUALITY_PRESETS:
        raise InputError(f"unknown quality {quality!r}; valid: {', '.join(QUALITY_PRESETS)}")
    if model not in ("auto", "onet", "doccnet", "blend", "r2n2"):
        raise InputError(f"unknown model {model!r}; valid: auto, onet, doccnet, blend, r2n2 "
                         "(onet-pcl: use reconstruct_points)")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    from recon_cli.io.segment import SEGMENT_METHODS

    if segment not in SEGMENT_METHODS:
        raise InputError(f"unknown segmentation method {segment!r}; valid: {', '.join(SEGMENT_METHODS)}")
    if max_pixels < 1:
        raise InputError(f"max_pixels must be positive, got {max_pixels}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be at least 1, got {threads}")
    res0, steps = QUALITY_PRESETS[quality]
    extract = ExtractOptions(resolution0=resolution if resolution is not None else res0,
                             upsampling_steps=upsampling_steps if upsampling_steps is not None else steps,
                             threshold=threshold, simplify_faces=simplify)
    opts = ReconstructOptions(model=model, weights=None if weights is None else Path(weights), backend=backend,
                              onnx_dir=None if onnx_dir is None else Path(onnx_dir), device=device, threads=threads)
    if model == "r2n2":
        from recon_cli.voxel import load_voxel_reconstructor

        rec, described = load_voxel_reconstructor(opts.weights, options=extract, device=device, threads=threads,
                                                  backend=backend)
        runtime, stages = rec.backend, "r2n2"
    else:
        runtime, described = make_backend(opts)
        stages = _stages(model, runtime, points=False) if runtime.has_stage1 else "auto"
        rec = MultiViewReconstructor(runtime, options=extract, stages=stages, seed=seed)
    return ReconModel(runtime, rec, weights=described, stages=stages,
                      settings=_Settings(segment=segment if remove_bg else "none", max_pixels=max_pixels, batch_size=batch_size))
