"""Reconstruction library: images or point clouds -> meshes through a Backend.

D-OccNet inference: image -> code c1 -> MISE + marching cubes -> stage-1 mesh
-> ``n_input_points`` (300) surface points (:func:`sample_input_points`) ->
code c2 -> MISE + marching cubes -> final mesh. Several shapes are advanced
together, so every MISE round makes one forward pass over all shapes' points.

The D-OccNet paper reduced the stage-1 mesh to 300 vertices with MeshLab; we
instead draw area-weighted surface samples (10x oversampling, seeded) and keep
300 of them by farthest-point sampling, which spreads them evenly like a
simplified mesh's vertices.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import trimesh

from recon_cli.errors import InputError
from recon_cli.extract.grid import PADDING, box_size, final_resolution, probability_to_logit
from recon_cli.extract.mise import MiseResult, mise_batched
from recon_cli.extract.postprocess import empty_mesh, grid_to_mesh, simplify
from recon_cli.runtime.base import Backend

#: quality name -> (resolution0, upsampling_steps): draft 65^3, standard 129^3, high 257^3 lattices.
QUALITY_PRESETS: dict[str, tuple[int, int]] = {"draft": (32, 1), "standard": (32, 2), "high": (32, 3)}

#: Valid ``stages`` values: "auto" (all the model has, or the checkpoint's ``default_model``), "1"
#: (image stage only), "1+2" (D-OccNet), "blend" (D-OccNet whose final field blends in stage 1's logits).
STAGES = ("auto", "1", "1+2", "blend")

#: ``blend``: the weight of stage 1's logits in the final field, stage 2's taking the rest. Chosen on
#: validation (78 models of the training set's val split, weights 0-1 in steps of 0.25 by thresholds
#: 0.2-0.5): 0.75 at 0.4 gave class-mean IoU .550 against .514 for the chain and .544 for stage 1 alone
#: (weights/MODEL_CARD.md, "Blending the two stages").
BLEND_STAGE1_WEIGHT = 0.75

#: on_progress(phase, done, total): phase is "encode", "stage1", "sample", "stage2" or "mesh".
ProgressFn = Callable[[str, int, int], None]


#: Surface threshold of checkpoints that store none (the OccNet papers' 0.2).
DEFAULT_THRESHOLD = 0.2


def tuned_threshold(backend: Any, stages: str) -> float:
    """The threshold ``backend``'s checkpoint was tuned for, for the stages run (else 0.2)."""
    table = getattr(backend, "thresholds", None) or {}
    has1, has2 = bool(getattr(backend, "has_stage1", True)), bool(getattr(backend, "has_stage2", False))
    if stages == "1" or (stages == "auto" and not has2):
        key = "onet"
    elif not has1:
        key = "onet-pcl"
    elif stages == "blend":
        key = "blend"
    else:
        key = "doccnet"
    return float(table.get(key, DEFAULT_THRESHOLD))


@dataclass(frozen=True)
class ExtractOptions:
    """How meshes are extracted.

    ``threshold`` is an occupancy probability (converted once to a logit); None = the one the
    checkpoint was tuned for on validation (``Backend.thresholds``), else 0.2
    (:meth:`Reconstructor.__init__` resolves it).
    ``batch_points`` caps the points of one forward pass (over all shapes).
    ``stage1_upsampling_steps``: MISE steps for the intermediate stage-1 mesh of
    D-OccNet (None = ``upsampling_steps``; never finer than ``upsampling_steps``).
    That mesh only feeds 300 points to stage 2, so by default it is extracted on
    the 65^3 lattice (1 step), which evaluates about half as many points as 129^3
    (the 33^3 coarse level dominates) at little cost to the final mesh.
    ``mc_backend``: "pymcubes", "torch", or "auto" (torch: the vectorised version was faster than
    PyMCubes on one CPU thread, 0.12 vs 0.17 s at 129^3 and 0.85 vs 1.4 s at 257^3 on a loaded
    2-core machine, and it runs on the GPU; benchmarks/bench_extract.py measures both; the two give
    the same vertices and face counts).
    """

    resolution0: int = 32
    upsampling_steps: int = 2
    threshold: float | None = None
    batch_points: int = 262_144
    simplify_faces: int | None = None
    mc_backend: str = "auto"
    stage1_upsampling_steps: int | None = 1
    padding: float = PADDING

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise InputError(f"threshold must be a probability strictly between 0 and 1, got {self.threshold}")
        if self.resolution0 < 2:
            raise InputError(f"resolution must be at least 2, got {self.resolution0}")
        for name in ("upsampling_steps", "stage1_upsampling_steps"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 5:
                raise InputError(f"{name.replace('_', '-')} must be between 0 and 5, got {value}")
        if self.batch_points < 1:
            raise InputError(f"batch_points must be positive, got {self.batch_points}")
        if self.simplify_faces is not None and self.simplify_faces < 4:
            raise InputError(f"simplify target must be at least 4 faces, got {self.simplify_faces}")
        if self.mc_backend not in ("auto", "pymcubes", "torch"):
            raise InputError(f"unknown marching cubes backend {self.mc_backend!r}; valid: auto, pymcubes, torch")

    @property
    def level(self) -> float:
        """The threshold as a logit (0.2 when unresolved)."""
        return probability_to_logit(DEFAULT_THRESHOLD if self.threshold is None else self.threshold)


@dataclass
class Reconstruction:
    """One reconstructed shape. ``seconds`` and ``timings`` are shares of the batch's wall time."""

    mesh: trimesh.Trimesh
    stage1_mesh: trimesh.Trimesh | None
    points: np.ndarray | None
    seconds: float
    n_evaluated: int
    timings: dict[str, float] = field(default_factory=dict)
    grid: Any = None  # voxel models: the occupancy probabilities (R, R, R) the mesh was extracted from

    @property
    def empty(self) -> bool:
        """True when the final mesh has no faces."""
        return len(self.mesh.faces) == 0

    @property
    def peak_probability(self) -> float | None:
        """For an empty result, the highest occupancy probability the last extraction found (of the
        final field, or of stage 1 where stage 1 already had no surface); None when not known."""
        for mesh in (self.mesh, self.stage1_mesh):
            if mesh is not None and len(mesh.faces) == 0 and PEAK_KEY in mesh.metadata:
                return float(mesh.metadata[PEAK_KEY])
        return None


#: key of an empty mesh's ``metadata`` holding the highest occupancy probability of its field
PEAK_KEY = "recon_peak_probability"


def peak_probability(logits: np.ndarray) -> float:
    """Highest occupancy probability of a field of logits (0.0 when it has no finite value)."""
    from scipy.special import expit

    finite = np.asarray(logits, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return 0.0 if finite.size == 0 else float(expit(finite.max()))


def empty_message(threshold: float | None, peak: float | None, *, option: str = "threshold") -> str:
    """One line on an empty reconstruction: the threshold, the highest occupancy found and what to try
    (``option``: how the caller's user sets the threshold, e.g. ``--threshold``)."""
    text = f"empty reconstruction (no surface above threshold {threshold}"
    if peak is None:
        return text + f"); try a lower {option}"
    if peak < 0.05:
        return text + f": the highest occupancy anywhere is {peak:.3f}); the network sees no object in this input"
    suggest = max(0.01, float(np.floor(peak * 0.9 * 100) / 100))
    return text + f": the highest occupancy anywhere is {peak:.3f}); try {option} {suggest:g}"


def content_seed(data: torch.Tensor | np.ndarray) -> int:
    """A 63-bit seed from the bytes (and shape) of an array: a stage-1 mesh's vertices, a point cloud."""
    if isinstance(data, torch.Tensor):
        data = data.detach().to("cpu", torch.float32).contiguous().numpy()
    arr = np.ascontiguousarray(data, dtype=np.float32)
    digest = hashlib.blake2b(repr(arr.shape).encode() + arr.tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def farthest_point_sampling(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (min(n, M),) of ``n`` points of (M, 3) ``points`` chosen by farthest-point sampling."""
    m = len(points)
    if n >= m:
        return np.arange(m)
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = rng.integers(m)
    dist = np.sum((points - points[chosen[0]]) ** 2, axis=1)
    for i in range(1, n):
        chosen[i] = int(np.argmax(dist))
        np.minimum(dist, np.sum((points - points[chosen[i]]) ** 2, axis=1), out=dist)
    return chosen


def sample_input_points(
    mesh: trimesh.Trimesh, n: int = 300, rng: np.random.Generator | None = None, *, oversample: int = 10
) -> np.ndarray:
    """(n, 3) float32 points on ``mesh``: area-weighted samples, then farthest-point sampling.

    An empty mesh gives a (0, 3) array.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    if len(mesh.faces) == 0 or mesh.area <= 0:
        return np.zeros((0, 3), dtype=np.float32)
    samples, _ = trimesh.sample.sample_surface(mesh, n * oversample, seed=int(rng.integers(2**31)))
    samples = np.asarray(samples, dtype=np.float64)
    return samples[farthest_point_sampling(samples, n, rng)].astype(np.float32)


def resample_cloud(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Bring a user's cloud to exactly ``n`` points: FPS when larger, random repeats when smaller."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    if len(points) == 0:
        raise InputError("the point cloud is empty")
    if len(points) > n:
        return points[farthest_point_sampling(points.astype(np.float64), n, rng)]
    if len(points) < n:
        extra = rng.integers(len(points), size=n - len(points))
        return np.concatenate([points, points[extra]])
    return points


def _exact_surface_values(results: Sequence[Any], exact: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
                          level: float, resolution: int, padding: float) -> None:
    """Mixed precision: re-evaluate with ``exact`` (float32) the evaluated points at the ends of the edges
    the surface crosses, except those already redone because they lie within the band around ``level``.

    The signs, and so MISE's choices and the mesh's topology, are the band's business; this makes the
    vertex positions float32 too. Without it a thin part one cell wide moves by a visible share of its
    volume (the example lamp: IoU 0.963 with the float32 mesh, 1.0 with it).
    """
    from recon_cli.extract.grid import index_to_world
    from recon_cli.extract.mise import surface_corners
    from recon_cli.runtime.torch_backend import MIXED_BAND

    picks = []
    for res in results:
        flat = surface_corners(res.values, level, res.known)
        flat = flat[np.abs(res.values.reshape(-1)[flat] - level) >= MIXED_BAND]
        picks.append(flat)
    points = [index_to_world(np.stack(np.unravel_index(flat, res.values.shape), axis=1), resolution,
                             padding=padding).astype(np.float32) for res, flat in zip(results, picks)]
    for res, flat, values in zip(results, picks, exact(points)):
        res.values.reshape(-1)[flat] = values


class KnownValues:
    """The lattice values one MISE extraction evaluated, for a later field of the same codes to reuse.

    The blend's final field is ``w * stage1 + (1 - w) * stage2`` on a lattice that contains the stage-1
    mesh's (129^3 and 65^3 by default), and its MISE queries again most of the points stage 1's
    evaluated (its whole start lattice, and much of the next level near a surface both see): their
    stage-1 values are looked up here instead of decoded again. ``level`` (mixed precision): only the
    values within :data:`~recon_cli.runtime.torch_backend.MIXED_BAND` of it were computed in float32, so
    only those stand in for float32 values; the others stand in for the bfloat16 fast path. Without
    it every known value is the backend's own.
    """

    def __init__(self, result: MiseResult, resolution: int, padding: float, level: float | None = None) -> None:
        self.values = result.values.reshape(-1)
        self.known = (np.zeros(self.values.shape, bool) if result.known is None else result.known.reshape(-1))
        self.level = level
        self.resolution = resolution
        self.box = box_size(padding)

    @functools.cached_property
    def exact(self) -> np.ndarray:
        """The known points whose values are float32 ones (a lattice-sized mask, built when first asked
        for: only a blend looks values up, and a stage-1-only extraction never does)."""
        if self.level is None:
            return self.known
        from recon_cli.runtime.torch_backend import MIXED_BAND

        return self.known & (np.abs(self.values - self.level) < MIXED_BAND)

    def lookup(self, points: np.ndarray, *, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        """(hit, values): which of ``points`` (M, 3) are known lattice points (M,) bool, and their values."""
        r = self.resolution
        coords = (np.asarray(points, np.float64) / self.box + 0.5) * r
        index = np.rint(coords)
        on = (np.abs(coords - index) < 1e-3).all(axis=1) & (index >= 0).all(axis=1) & (index <= r).all(axis=1)
        index = np.where(on[:, None], index, 0).astype(np.int64)
        flat = (index[:, 0] * (r + 1) + index[:, 1]) * (r + 1) + index[:, 2]
        hit = on & (self.exact if exact else self.known)[flat]
        return hit, self.values[flat[hit]]


def _reusing(evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]], known: Sequence[KnownValues], *,
             exact: bool) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
    """``evaluate`` (per-shape points -> values) that takes each shape's known values from ``known``
    and evaluates only the other points."""
    def evaluate_rest(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
        points = [np.asarray(q, np.float32).reshape(-1, 3) for q in queries]
        hits = [k.lookup(q, exact=exact) for q, k in zip(points, known, strict=True)]
        computed = evaluate([q[~hit] for q, (hit, _) in zip(points, hits)])
        out = []
        for (hit, values), rest in zip(hits, computed):
            merged = np.empty(len(hit), np.float32)
            merged[hit] = values
            merged[~hit] = rest
            out.append(merged)
        return out

    return evaluate_rest


def _check_finite(values: np.ndarray, stage: int) -> None:
    if not np.isfinite(values).all():
        raise InputError(f"the stage-{stage} network gave NaN or infinite occupancy values "
                         "(damaged weights or an input it cannot handle); no mesh written")


class Reconstructor:
    """Images or point clouds -> meshes with any :class:`Backend` (torch or ONNX)."""

    def __init__(
        self,
        backend: Backend,
        *,
        options: ExtractOptions | None = None,
        stages: str = "auto",
        seed: int = 0,
        on_progress: ProgressFn | None = None,
    ) -> None:
        if stages not in STAGES:
            raise InputError(f"unknown stages {stages!r}; valid: {', '.join(STAGES)}")
        self.backend = backend
        default = getattr(backend, "default_model", None)
        if stages == "auto" and getattr(backend, "has_stage1", True):
            # the checkpoint says what measured best (--model doccnet / onet force one)
            if default == "onet":
                stages = "1"
            elif default == "blend" and getattr(backend, "has_stage2", False):
                stages = "blend"
        options = options if options is not None else ExtractOptions()
        if options.threshold is None:
            options = dataclasses.replace(options, threshold=tuned_threshold(backend, stages))
        self.options = options
        self.stages = stages
        self.seed = seed
        self.on_progress = on_progress

    # -- helpers -------------------------------------------------------------------------
    def _progress(self, phase: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done, total)

    def _rng(self, data: torch.Tensor | np.ndarray) -> np.random.Generator:
        """A generator seeded by ``seed`` and ``data``'s content (never by its place in a batch).

        The 300 stage-2 points of an image are drawn with the generator of the *input image*, so
        that the same image gives the same points alone, anywhere in a batch, in a shard or after a
        resume, and so that two stage-1 meshes that differ in the last bits of a vertex (another
        backend, precision or thread count) give nearly the same points: area-weighted sampling
        and farthest-point sampling with the same random numbers move their points by no more
        than the mesh moved. Seeding by the mesh's own bytes made any such difference draw a new
        set of points, and stage 2's mesh changes by IoU 0.77-0.99 with its points alone.
        """
        return np.random.default_rng([self.seed, content_seed(data)])

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Codes (B, c1) of images (B, 3, S, S), one image per forward pass: a code (down to the last
        bit) must not depend on the other images of the batch."""
        return torch.cat([self.backend.encode_image(images[i : i + 1].to(self.backend.device))
                          for i in range(len(images))])

    def _mc_backend(self) -> str:
        if self.options.mc_backend != "auto":
            return self.options.mc_backend
        return "torch"

    def _eval_fn(self, stage: int, codes: torch.Tensor, *, cut: bool = False, fast: bool = False
                 ) -> Callable[[Sequence[np.ndarray]], list[np.ndarray]]:
        """Eval function for MISE: per-shape point arrays -> per-shape logits.

        ``cut``: these values are only cut at the level into a mesh, so only their side
        of it and the values near it matter, and a backend may compute them in reduced
        precision away from the level (``precision="mixed"``); raw logits (averaged over
        views, say) are asked for without it. ``fast``: a mixed-precision backend's bfloat16
        values alone (the caller redoes a band itself, see :meth:`_blend_fns`).

        Each shape is decoded on its own, so its logits (down to the last bit) do not
        depend on which other shapes share the batch: a batched forward pass would pad
        and re-chunk the points by the batch's composition, and different matrix shapes
        give different rounding. On the CPU a backend with ``decode_many`` cuts each
        shape's points into fixed chunks for its worker threads; otherwise (GPU) each
        shape is decoded ``batch_points`` points at a time.
        """
        backend, device = self.backend, self.backend.device
        chunk = self.options.batch_points
        decode_many = getattr(backend, "decode_many", None)
        if decode_many is not None and device.type == "cpu":
            level = self.options.level if cut else None

            def evaluate_chunked(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
                out = decode_many(stage, queries, codes, level=level, fast=fast)
                for values in out:
                    _check_finite(values, stage)
                return out

            return evaluate_chunked

        def evaluate(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
            out = []
            for i, q in enumerate(queries):
                if not len(q):
                    out.append(np.zeros(0, dtype=np.float32))
                    continue
                pts = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(device)[None]  # (1, M, 3)
                c = codes[i : i + 1]
                logits = torch.cat([backend.decode(stage, pts[:, s : s + chunk], c) for s in range(0, len(q), chunk)],
                                   dim=1)
                values = logits[0].float().cpu().numpy()
                _check_finite(values, stage)
                out.append(values)
            return out

        return evaluate

    def extract(self, stage: int, codes: torch.Tensor, *, upsampling_steps: int | None = None
                ) -> tuple[list[trimesh.Trimesh], list[int]]:
        """Meshes of ``stage`` for codes (B, c): batched MISE then marching cubes; (meshes, n_evaluated).

        In ``mixed`` precision the values are computed as for a cut (see :meth:`_eval_fn`) and the
        vertices placed from float32 values (``exact``), for a final mesh and for a stage-1 mesh
        that stage 2's points are sampled from alike: such a mesh is the float32 one but for the
        last bits of its vertices, which move its sampled points no further (see :meth:`_rng`).
        """
        meshes, n_eval, _ = self.extract_known(stage, codes, upsampling_steps=upsampling_steps)
        return meshes, n_eval

    def extract_known(self, stage: int, codes: torch.Tensor, *, upsampling_steps: int | None = None
                      ) -> tuple[list[trimesh.Trimesh], list[int], list[KnownValues]]:
        """:meth:`extract`, with the values it evaluated (for a later field of the same codes to reuse)."""
        exact = None
        mixed = getattr(self.backend, "precision", "float32") == "mixed"
        if mixed:
            def exact(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
                return self.backend.decode_many(stage, queries, codes)  # no level: float32

        steps = self.options.upsampling_steps if upsampling_steps is None else upsampling_steps
        meshes, results = self._extract_results(self._eval_fn(stage, codes, cut=True), len(codes), steps, exact)
        resolution = final_resolution(self.options.resolution0, steps)
        known = [KnownValues(r, resolution, self.options.padding, self.options.level if mixed else None)
                 for r in results]
        return meshes, [r.n_evaluated for r in results], known

    def extract_field(self, evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]], n_shapes: int, *,
                      upsampling_steps: int | None = None,
                      exact: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None
                      ) -> tuple[list[trimesh.Trimesh], list[int]]:
        """Meshes of ``n_shapes`` fields given by a batched ``evaluate`` (per-shape points -> logits).

        ``exact`` (mixed precision): a float32 evaluation, used again on every evaluated lattice point
        at the end of an edge the surface crosses whose value came from the fast path, so that marching
        cubes places its vertices from float32 values (:func:`_exact_surface_values`).
        """
        steps = self.options.upsampling_steps if upsampling_steps is None else upsampling_steps
        meshes, results = self._extract_results(evaluate, n_shapes, steps, exact)
        return meshes, [r.n_evaluated for r in results]

    def _extract_results(self, evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]], n_shapes: int,
                         steps: int, exact: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None
                         ) -> tuple[list[trimesh.Trimesh], list[MiseResult]]:
        opt = self.options
        results = mise_batched(evaluate, n_shapes, opt.resolution0, steps, opt.level, padding=opt.padding)
        if steps > 0:
            results = self._retry_empty(results, evaluate, steps)
        if exact is not None:
            _exact_surface_values(results, exact, opt.level, final_resolution(opt.resolution0, steps), opt.padding)
        meshes = []
        mc = self._mc_backend()
        for res in results:
            values = torch.from_numpy(res.values).to(self.backend.device) if mc == "torch" else res.values
            mesh = grid_to_mesh(values, opt.level, padding=opt.padding, backend=mc)
            if len(mesh.faces) == 0:
                # what a user needs to choose a threshold that gives a surface (interpolated values
                # never exceed the evaluated ones, so this is the highest value the network gave)
                mesh.metadata[PEAK_KEY] = peak_probability(res.values)
            meshes.append(mesh)
        return meshes, results

    def _retry_empty(self, results: list[MiseResult], evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
                     steps: int) -> list[MiseResult]:
        """Extract again, from a start lattice twice as fine (the same final lattice), the fields whose
        MISE found no surface: a part thinner than the start lattice's spacing (a hanging disc, a
        stem) can fall between its points, and then no voxel is ever subdivided. An empty result
        costs the finer start's points (65^3 for the 129^3 lattice); the others cost nothing."""
        opt = self.options
        empty = [i for i, r in enumerate(results) if not (r.values > opt.level).any()]
        if not empty:
            return results
        n = len(results)

        def subset(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
            full = [np.zeros((0, 3), np.float32)] * n
            for i, q in zip(empty, queries, strict=True):
                full[i] = q
            out = evaluate(full)
            return [out[i] for i in empty]

        again = mise_batched(subset, len(empty), opt.resolution0 * 2, steps - 1, opt.level, padding=opt.padding)
        results = list(results)
        for i, r in zip(empty, again, strict=True):
            r.n_evaluated += results[i].n_evaluated
            results[i] = r
        return results

    def _blend_fns(self, codes1: torch.Tensor, codes2: torch.Tensor, known1: Sequence[KnownValues] | None = None
                   ) -> tuple[Callable[[Sequence[np.ndarray]], list[np.ndarray]],
                              Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None]:
        """(evaluate, exact) of the blended field ``w * stage1 + (1 - w) * stage2`` (w =
        :data:`BLEND_STAGE1_WEIGHT`) for MISE: in ``mixed`` precision both decoders run in bfloat16,
        the points whose blend lies within the band of the level are redone in float32 (both
        decoders), and ``exact`` (float32) serves the surface pass; otherwise ``exact`` is None.
        ``known1``: stage 1's values from the extraction of the stage-1 meshes (:class:`KnownValues`),
        taken instead of decoding those points again."""
        w = BLEND_STAGE1_WEIGHT
        exact1, exact2 = self._eval_fn(1, codes1), self._eval_fn(2, codes2)
        if known1 is not None:
            exact1 = _reusing(exact1, known1, exact=True)

        def exact(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
            return [w * a + (1.0 - w) * b for a, b in zip(exact1(queries), exact2(queries), strict=True)]

        if getattr(self.backend, "precision", "float32") != "mixed" or self.backend.device.type != "cpu":
            return exact, None
        from recon_cli.runtime.torch_backend import redo_band

        fast1, fast2 = self._eval_fn(1, codes1, fast=True), self._eval_fn(2, codes2, fast=True)
        if known1 is not None:
            fast1 = _reusing(fast1, known1, exact=False)

        def evaluate(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
            values = [w * a + (1.0 - w) * b for a, b in zip(fast1(queries), fast2(queries), strict=True)]
            return redo_band(values, queries, self.options.level, exact)

        return evaluate, exact

    def _use_stage2(self) -> bool:
        if self.stages == "1":
            return False
        if self.stages in ("1+2", "blend") and not self.backend.has_stage2:
            raise InputError("this model has no point-cloud stage (stage 2); use stages '1'")
        return self.backend.has_stage2

    def _finish(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        if self.options.simplify_faces is not None and len(mesh.faces) > 0:
            return simplify(mesh, self.options.simplify_faces)
        return mesh

    # -- public --------------------------------------------------------------------------
    def reconstruct_images(self, images: torch.Tensor) -> list[Reconstruction]:
        """Images (B, 3, S, S) RGB in [0, 1] on white -> one Reconstruction per image."""
        if not self.backend.has_stage1:
            raise InputError("this model has no image stage (it is an onet-pcl model); give a point cloud instead")
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must have shape (B, 3, S, S), got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise InputError(f"images must be float RGB in [0, 1], got dtype {images.dtype}")
        with torch.inference_mode():
            return self._reconstruct_images(images)

    def _reconstruct_images(self, images: torch.Tensor) -> list[Reconstruction]:
        start = time.perf_counter()
        b = len(images)
        timings: dict[str, float] = {}
        self._progress("encode", 0, b)
        codes = self.encode_images(images)
        timings["encode"] = time.perf_counter() - start
        self._progress("stage1", 0, b)
        t = time.perf_counter()
        steps1 = self._stage1_steps()
        meshes1, n1, known1 = self.extract_known(1, codes, upsampling_steps=steps1)
        timings["stage1"] = time.perf_counter() - t
        return self._complete(meshes1, n1, timings, start, keys=list(images), codes1=codes, known1=known1)

    def _stage1_steps(self) -> int | None:
        """MISE steps of the stage-1 mesh: coarser when it only feeds stage 2 (see ExtractOptions)."""
        steps1 = self.options.stage1_upsampling_steps if self._use_stage2() else None
        return None if steps1 is None else min(steps1, self.options.upsampling_steps)

    def _complete(self, meshes1: list[trimesh.Trimesh], n1: list[int], timings: dict[str, float], start: float,
                  *, clouds: list[np.ndarray] | None = None,
                  keys: Sequence[torch.Tensor | np.ndarray] | None = None,
                  codes1: torch.Tensor | None = None,
                  known1: Sequence[KnownValues] | None = None) -> list[Reconstruction]:
        """Stage-1 meshes -> Reconstructions: stage 2 on their 300 points when the model has it.

        ``clouds`` (one per shape) replaces the points sampled from ``meshes1``.
        ``keys`` (one per shape): what seeds the sampling of each shape's points, normally its
        input image (:meth:`_rng`); without them, the stage-1 mesh's vertices.
        ``codes1`` (B, c1): the stage-1 codes the ``blend`` stages mix into the final field; without
        them (fused clouds or logits) the final mesh is stage 2's. ``known1`` (one per shape): the
        stage-1 values evaluated for ``meshes1``, which the blend reuses.
        """
        b = len(meshes1)
        if not self._use_stage2():
            finals = [self._finish(m) for m in meshes1]
            return self._package(finals, [None] * b, [None] * b, n1, timings, start)
        self._progress("sample", 0, b)
        t = time.perf_counter()
        if clouds is None:
            keys = [np.asarray(m.vertices) for m in meshes1] if keys is None else keys
            clouds = [sample_input_points(m, self.backend.n_input_points, self._rng(k))
                      for m, k in zip(meshes1, keys, strict=True)]
        timings["sample"] = time.perf_counter() - t
        keep = [i for i, cl in enumerate(clouds) if len(cl) == self.backend.n_input_points]
        finals = [empty_mesh() for _ in range(b)]
        n_eval = list(n1)
        if keep:
            self._progress("stage2", 0, b)
            t = time.perf_counter()
            blend = None if codes1 is None or self.stages != "blend" else codes1[keep]
            meshes2, n2 = self._stage2([clouds[i] for i in keep], blend,
                                       None if known1 is None else [known1[i] for i in keep])
            for i, mesh, n in zip(keep, meshes2, n2):
                finals[i] = self._finish(mesh)
                n_eval[i] += n
            timings["stage2"] = time.perf_counter() - t
        points = [cl if len(cl) else None for cl in clouds]
        return self._package(finals, meshes1, points, n_eval, timings, start)

    def _stage2(self, clouds: Sequence[np.ndarray], codes1: torch.Tensor | None = None,
                known1: Sequence[KnownValues] | None = None) -> tuple[list[trimesh.Trimesh], list[int]]:
        """Final meshes from the clouds' stage-2 codes, blended with ``codes1``'s stage 1 when given
        (a blend without any surface falls back to stage 2's own, and where that is empty too, to
        stage 1's own at the final resolution: stage 1 had a surface, or there were no points)."""
        codes2 = self._point_codes(clouds)
        if codes1 is None:
            return self.extract(2, codes2)
        evaluate, exact = self._blend_fns(codes1, codes2, known1)
        meshes, n_eval = self.extract_field(evaluate, len(codes2), exact=exact)
        # where stage 1 is so sure of empty space that the blend has no surface left (thin lamps),
        # stage 2's own surface is the answer rather than nothing
        empty = [i for i, m in enumerate(meshes) if len(m.faces) == 0]
        if empty:
            again, n_again = self.extract(2, codes2[empty])
            for i, mesh, n in zip(empty, again, n_again):
                meshes[i], n_eval[i] = mesh, n_eval[i] + n
        # a stage 2 that sees nothing in 300 points of a thin stage-1 surface (a flat disc of a hanging
        # light) must not erase what stage 1 found
        still = [i for i in empty if len(meshes[i].faces) == 0]
        if still:
            again, n_again = self.extract(1, codes1[still])
            for i, mesh, n in zip(still, again, n_again):
                meshes[i], n_eval[i] = mesh, n_eval[i] + n
        return meshes, n_eval

    def _point_codes(self, clouds: Sequence[np.ndarray]) -> torch.Tensor:
        """Stage-2 codes (B, c2) of clouds (each (P, 3))."""
        # one cloud per forward pass: codes must not depend on the batch's composition
        return torch.cat([self.backend.encode_points(torch.from_numpy(np.asarray(cl, np.float32))[None]
                                                     .to(self.backend.device)) for cl in clouds])

    def reconstruct_points(self, clouds: Sequence[np.ndarray]) -> list[Reconstruction]:
        """Point clouds (each (P_i, 3), already in the normalised frame) -> stage-2 reconstructions.

        Each cloud is brought to ``n_input_points`` points first (farthest-point
        sampling when larger, random repeats when smaller).
        """
        if not self.backend.has_stage2:
            raise InputError("this model has no point-cloud stage (it is an onet model); give images instead")
        if not clouds:
            return []
        inputs = [resample_cloud(cloud, self.backend.n_input_points, self._rng(cloud)) for cloud in clouds]
        with torch.inference_mode():
            start = time.perf_counter()
            meshes, n_eval = self._stage2(inputs)
            timings = {"stage2": time.perf_counter() - start}
            finals = [self._finish(m) for m in meshes]
            return self._package(finals, [None] * len(clouds), inputs, n_eval, timings, start)

    def _package(self, finals, meshes1, points, n_eval, timings, start) -> list[Reconstruction]:
        b = len(finals)
        total = time.perf_counter() - start
        share = {k: v / b for k, v in timings.items()}
        self._progress("mesh", b, b)
        return [
            Reconstruction(mesh, m1, pts, total / b, int(n), dict(share))
            for mesh, m1, pts, n in zip(finals, meshes1, points, n_eval)
        ]
