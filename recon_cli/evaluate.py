"""Evaluation on a ShapeNet-layout split: reconstruct (or read) one mesh per model and score it.

Three producers share one protocol (:mod:`recon_cli.metrics`) and one results
store:

- :func:`evaluate_model` reconstructs each model from view 0 with a
  :class:`~recon_cli.pipeline.Reconstructor` (batched, on the backend's device);
- :func:`evaluate_meshes` reads ``<meshes>/<synset>/<model>.{off,obj,ply,stl}``
  made by any tool (a missing or unreadable file counts as failed);
- :func:`evaluate_retrieval` is the retrieval baseline (:mod:`recon_cli.retrieval`).

Results go to ``objects.csv`` (one row per scored model, rewritten atomically
after each batch, so an interrupted run resumes by skipping scored models) and
``summary.json`` in the run folder: ``out`` itself, or ``out/shard-I-of-N``
with ``shard=(I, N)`` (model k of the split list belongs to shard k % N).
:func:`merge_results` combines shard folders. Per-model sampling seeds depend
only on (synset, model, seed), so sharded and unsharded runs agree exactly.

Models whose ground-truth files or input render are missing or corrupt cannot
be scored; they are reported in ``skipped`` with their reason (and the summary)
and are not part of any mean. A category without a split file and duplicated
split lines (counted once) are reported in ``notes``.
Every other model is scored; empty or failed predictions get the worst-case
scores of :func:`recon_cli.metrics.worst_scores` and are counted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recon_cli.data.categories import SYNSETS, canonical_synset, standard_name
from recon_cli.errors import ConfigError, DatasetError, InputError, ReconError
from recon_cli.io.atomic import atomic_write_text
from recon_cli.metrics import (
    CHAMFER_SCALE, FSCORE_THRESHOLDS, METRIC_KEYS, N_SURFACE_SAMPLES, WORST_DISTANCE, Scores,
    mean_scores, model_seed, score_mesh, worst_scores,
)

if TYPE_CHECKING:
    import trimesh

    from recon_cli.runtime.base import Backend

OBJECTS_FILE = "objects.csv"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
MESHES_DIR = "meshes"
RETRIEVAL_INDEX_FILE = "retrieval_index.npz"
MESH_SUFFIXES: tuple[str, ...] = (".off", ".obj", ".ply", ".stl")
STATUSES: tuple[str, ...] = ("ok", "empty", "failed")
SUMMARY_FORMAT = 1

_SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)$")
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

Key = tuple[str, str]  # (synset, model)


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate and how (shared by every producer)."""

    split: str = "test"
    categories: tuple[str, ...] | None = None  # synset ids or names; None = all of the dataset
    limit: int | None = None                   # first N models of each category (split order)
    shard: tuple[int, int] = (0, 1)            # (index, count)
    seed: int = 0                              # base of the per-model surface-sampling seeds
    n_samples: int = N_SURFACE_SAMPLES         # surface samples on each predicted mesh
    batch_size: int = 8


@dataclass(frozen=True)
class ObjectResult:
    """Scores of one model; ``status`` is ok, empty (no surface) or failed (no mesh / error)."""

    synset: str
    model: str
    status: str
    scores: Scores
    error: str = ""
    n_faces: int = 0
    seconds: float = 0.0
    retrieved: str = ""  # retrieval baseline: "<synset>/<model>" of the returned training shape
    recon_seconds: float = 0.0  # model mode: this object's share of its batch's reconstruction time
    voxel_iou: float | None = None  # voxel models: 3D-R2N2's IoU at 32^3 (probability 0.4)

    @property
    def key(self) -> Key:
        return (self.synset, self.model)


@dataclass
class EvalRun:
    """What a run produced: all results of its folder (resumed ones included) and the summary."""

    results: list[ObjectResult]
    summary: dict[str, Any]
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    resumed: int = 0
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unscorable:
    """A producer's answer for a model the dataset cannot score (its input render is missing or
    corrupt): the model is *skipped* with this reason, like one whose ground truth is damaged.

    The rule: *skipped* = the dataset lacks what the protocol needs (render, points.npz,
    pointcloud.npz); *failed* = the method gave no usable mesh. Skipped models are named with
    their reason and are in no mean; failed ones score worst-case values and are in every mean.
    """

    reason: str


#: on_progress(done, total, result): called once with (0, total, None), then per model.
ProgressFn = Callable[[int, int, "ObjectResult | None"], None]


# --------------------------------------------------------------------------- model lists


def _check_id(text: str, what: str, root: Path) -> str:
    if not _ID_RE.match(text) or ".." in text:
        raise DatasetError(f"unsafe {what} id {text!r} in a split file", path=root)
    return text


def category_names(root: str | Path) -> dict[str, str]:
    """synset -> short display name (metadata.yaml, else the standard names)."""
    from recon_cli.data.layout import read_metadata, short_name

    names = {synset: short_name(entry) for synset, entry in read_metadata(root).items()}
    return {s: (n if n and n != "n/a" else standard_name(s) or s) for s, n in names.items()}


def order_key(synset: str) -> tuple[int, str]:
    """Standard table order: the 13 categories first, then others by synset id."""
    order, key = list(SYNSETS), canonical_synset(synset)
    return (order.index(key), synset) if key in SYNSETS else (len(order), synset)


def list_models(root: str | Path, options: EvalOptions, notes: list[str] | None = None) -> list[Key]:
    """(synset, model) of the split in standard category order, ``limit`` per category (all shards).

    A category without a split file, and a model id listed twice, are not silent: a line saying so is
    appended to ``notes`` (when given). Duplicates count once.
    """
    from recon_cli.data.layout import SPLITS, read_metadata, read_split, resolve_categories, split_path

    root = Path(root)
    if options.split not in SPLITS:
        raise InputError(f"unknown split {options.split!r}; valid: {', '.join(SPLITS)}")
    synsets = resolve_categories(read_metadata(root), options.categories)
    notes = notes if notes is not None else []
    models: list[Key] = []
    for synset in sorted(synsets, key=order_key):
        listed = read_split(root, _check_id(synset, "synset", root), options.split)
        if not split_path(root, synset, options.split).is_file():
            notes.append(f"{synset}/{options.split}.lst: missing; category {synset} is not evaluated")
            continue
        ids = list(dict.fromkeys(listed))
        if len(ids) < len(listed):
            twice = sorted({m for m in listed if listed.count(m) > 1})
            notes.append(f"{synset}/{options.split}.lst: {len(listed) - len(ids)} duplicate line(s) "
                         f"({', '.join(twice[:3])}{' ...' if len(twice) > 3 else ''}); each model counted once")
        if options.limit is not None:
            ids = ids[: options.limit]
        models += [(synset, _check_id(m, "model", root)) for m in ids]
    if not models:
        raise DatasetError(f"no models in split {options.split!r} for the chosen categories", path=root)
    return models


def shard_batches(keys: Sequence[Key], options: EvalOptions) -> list[list[Key]]:
    """This shard's batches: the model list is cut into batches of ``batch_size`` and batch k
    belongs to shard k % n. Every batch has the same members in a sharded and an unsharded run,
    so sharded numbers equal unsharded ones (reconstruction itself no longer depends on the
    batch: see :class:`recon_cli.pipeline.Reconstructor`)."""
    index, count = options.shard
    if count < 1 or not 0 <= index < count:
        raise InputError(f"bad shard {index}/{count}: need 0 <= i < n")
    size = max(1, options.batch_size)
    batches = [list(keys[i:i + size]) for i in range(0, len(keys), size)]
    return [b for k, b in enumerate(batches) if k % count == index]


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GroundTruth:
    """points.npz and pointcloud.npz of one model (float32, occupancy bool)."""

    occ_points: np.ndarray  # (K, 3)
    occ: np.ndarray         # (K,)
    points: np.ndarray      # (M, 3)
    normals: np.ndarray     # (M, 3)


def load_ground_truth(model_dir: Path) -> GroundTruth:
    """Read a model's evaluation files (DatasetError naming the file on problems)."""
    from recon_cli.data.shapenet import load_occupancy, load_pointcloud

    occ_points, occ = load_occupancy(model_dir)
    points, normals = load_pointcloud(model_dir)
    return GroundTruth(occ_points, occ, points, normals)


def score_prediction(
    mesh: trimesh.Trimesh | None, gt: GroundTruth, key: Key, options: EvalOptions, *, error: str = "",
) -> ObjectResult:
    """Score ``mesh`` (None = failed, with ``error``) against ``gt``."""
    start = time.perf_counter()
    if mesh is None:
        return ObjectResult(*key, "failed", worst_scores(), error=error or "no mesh")
    scores, empty = score_mesh(
        mesh, occ_points=gt.occ_points, occ=gt.occ, gt_points=gt.points, gt_normals=gt.normals,
        seed=model_seed(*key, options.seed), n_samples=options.n_samples,
    )
    return ObjectResult(*key, "empty" if empty else "ok", scores, error=error, n_faces=len(mesh.faces),
                        seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- results store


def run_folder(out_dir: str | Path, shard: tuple[int, int]) -> Path:
    """``out`` for an unsharded run, ``out/shard-I-of-N`` otherwise."""
    index, count = shard
    return Path(out_dir) if count == 1 else Path(out_dir) / f"shard-{index}-of-{count}"


CSV_FIELDS: tuple[str, ...] = (
    "synset", "model", "status", *METRIC_KEYS, "n_faces", "seconds", "recon_seconds", "retrieved", "error",
)
#: Columns written after CSV_FIELDS and optional when reading (files of older versions lack them).
CSV_OPTIONAL: tuple[str, ...] = ("voxel_iou",)


def results_to_csv(results: Sequence[ObjectResult]) -> str:
    """CSV text (floats written with full precision, so a merge reproduces them exactly)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS + CSV_OPTIONAL)
    for r in results:
        s = r.scores.as_dict()
        writer.writerow([r.synset, r.model, r.status, *(repr(s[k]) for k in METRIC_KEYS), r.n_faces,
                         f"{r.seconds:.4f}", f"{r.recon_seconds:.4f}", r.retrieved, r.error,
                         "" if r.voxel_iou is None else repr(r.voxel_iou)])
    return buf.getvalue()


def read_results(path: Path) -> list[ObjectResult]:
    """Rows of an objects.csv (DatasetError naming it when malformed)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            missing = [k for k in CSV_FIELDS if k not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"not a recon objects.csv: no column(s) {', '.join(missing[:4])}")
        out = []
        for row in rows:
            scores = Scores(**{k: float(row[k]) for k in METRIC_KEYS})
            if row["status"] not in STATUSES:
                raise ValueError(f"bad status {row['status']!r}")
            out.append(ObjectResult(row["synset"], row["model"], row["status"], scores, error=row["error"],
                                    n_faces=int(row["n_faces"]), seconds=float(row["seconds"]),
                                    recon_seconds=float(row["recon_seconds"]), retrieved=row["retrieved"],
                                    voxel_iou=float(row["voxel_iou"]) if row.get("voxel_iou") else None))
        return out
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as exc:
        raise DatasetError(f"cannot read results ({type(exc).__name__}: {exc})", path=path) from exc


def sort_results(results: Sequence[ObjectResult]) -> list[ObjectResult]:
    """Canonical order (category order, then model id): identical sums whatever the run order."""
    return sorted(results, key=lambda r: (order_key(r.synset), r.model))


class ResultStore:
    """objects.csv of one run folder: loads earlier rows, rewrites atomically on flush."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = folder
        self.path = folder / OBJECTS_FILE
        self.rows: dict[Key, ObjectResult] = {}
        _check_settings(folder, settings)
        if self.path.is_file():
            for r in read_results(self.path):
                self.rows[r.key] = r
        self.resumed = len(self.rows)

    def add(self, results: Sequence[ObjectResult]) -> None:
        for r in results:
            self.rows[r.key] = r
        self.flush()

    def flush(self) -> None:
        atomic_write_text(self.path, results_to_csv(sort_results(list(self.rows.values()))))


#: settings that must match for a rerun to resume (or shards to merge).
PROTOCOL_KEYS: tuple[str, ...] = ("mode", "split", "seed", "n_samples", "producer")


def _check_settings(folder: Path, settings: dict[str, Any]) -> None:
    path = folder / RUN_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read run settings ({exc})", path=path) from exc
        diff = [k for k in PROTOCOL_KEYS if old.get(k) != settings.get(k)]
        if diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in diff)
            raise ConfigError(f"this folder holds results of a different evaluation ({detail}); use another --out",
                              path=folder)
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- summary


def _scores_doc(scores: Scores | None) -> dict[str, float | None]:
    return {k: (None if scores is None else getattr(scores, k)) for k in METRIC_KEYS}


def summarize(results: Sequence[ObjectResult], *, names: dict[str, str] | None = None,
              settings: dict[str, Any] | None = None, skipped: Sequence[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """The JSON summary: per-category means, class mean (unweighted over categories), object mean.

    Metric values are raw (Chamfer-L1, accuracy and completeness are *not* multiplied by 10 here).
    """
    names = names or {}
    results = sort_results(results)
    by_cat: dict[str, list[ObjectResult]] = {}
    for r in results:
        by_cat.setdefault(r.synset, []).append(r)
    categories = []
    for synset, rows in by_cat.items():
        cat_mean = mean_scores([r.scores for r in rows])
        categories.append({
            "synset": synset, "name": names.get(synset, standard_name(synset) or synset), "n": len(rows),
            "failed": sum(r.status != "ok" for r in rows), "empty": sum(r.status == "empty" for r in rows),
            **_scores_doc(cat_mean), **_voxel_doc(rows),
        })
    class_mean = mean_scores([Scores(**{k: c[k] for k in METRIC_KEYS}) for c in categories])
    return {
        "format_version": SUMMARY_FORMAT,
        "settings": settings or {},
        "metrics": list(METRIC_KEYS),
        "fscore_thresholds": list(FSCORE_THRESHOLDS),
        "worst_distance": WORST_DISTANCE,
        "chamfer_scale": CHAMFER_SCALE,
        "categories": categories,
        "class_mean": {"n": len(categories), **_scores_doc(class_mean), **_voxel_class_mean(categories)},
        "object_mean": {"n": len(results), "failed": sum(r.status != "ok" for r in results),
                        "empty": sum(r.status == "empty" for r in results),
                        **_scores_doc(mean_scores([r.scores for r in results])), **_voxel_doc(results)},
        "seconds_per_object": {
            "scoring": float(np.mean([r.seconds for r in results])) if results else None,
            "reconstruction": float(np.mean([r.recon_seconds for r in results])) if results else None,
        },
        "skipped": [{"synset": s, "model": m, "reason": why} for s, m, why in skipped],
    }


def _voxel_doc(rows: Sequence[ObjectResult]) -> dict[str, float]:
    """``{"voxel_iou": mean}`` over the rows that have one (failed objects count 0), or nothing."""
    values = [r.voxel_iou for r in rows if r.voxel_iou is not None and np.isfinite(r.voxel_iou)]
    if not values:
        return {}
    failed = sum(r.status == "failed" and r.voxel_iou is None for r in rows)
    return {"voxel_iou": float(np.sum(values) / (len(values) + failed))}


def _voxel_class_mean(categories: Sequence[dict[str, Any]]) -> dict[str, float]:
    values = [c["voxel_iou"] for c in categories if "voxel_iou" in c]
    return {"voxel_iou": float(np.mean(values))} if values and len(values) == len(categories) else {}


def _finish(root: Path, store: ResultStore | None, results: list[ObjectResult], settings: dict[str, Any],
            skipped: list[tuple[str, str, str]], resumed: int, notes: Sequence[str] = ()) -> EvalRun:
    summary = summarize(results, names=category_names(root), settings=settings, skipped=skipped)
    summary["notes"] = list(notes)
    if store is not None:
        atomic_write_text(store.folder / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return EvalRun(sort_results(results), summary, skipped, resumed, None if store is None else store.folder,
                   list(notes))


# --------------------------------------------------------------------------- the shared loop


Producer = Callable[[list[Key]], list["trimesh.Trimesh | None | ReconError | str"]]


def _run(root: Path, keys: list[Key], produce: Producer, options: EvalOptions, settings: dict[str, Any], *,
         out_dir: Path | None, save_meshes: bool, on_progress: ProgressFn | None,
         score: Callable[[Any, GroundTruth, Key], ObjectResult] | None = None,
         notes: Sequence[str] = ()) -> EvalRun:
    """Score this shard's models that are not already in the store, one batch at a time."""
    store = ResultStore(run_folder(out_dir, options.shard), settings) if out_dir is not None else None
    done = dict(store.rows) if store is not None else {}
    batches = shard_batches(keys, options)
    total = sum(len(b) for b in batches)
    results = [done[k] for b in batches for k in b if k in done]
    resumed = len(results)
    skipped: list[tuple[str, str, str]] = []
    if on_progress:
        on_progress(len(results), total, None)
    scorer = score or (lambda pred, gt, key: _score_any(pred, gt, key, options))
    for members in batches:
        batch, truths = [], []
        for key in members:
            if key in done:
                continue
            try:
                truths.append(load_ground_truth(root / key[0] / key[1]))
                batch.append(key)
            except DatasetError as exc:
                skipped.append((*key, str(exc)))
                if on_progress:
                    on_progress(len(results) + len(skipped), total, None)
        if not batch:
            continue
        new = []
        for key, gt, pred in zip(batch, truths, produce(batch)):
            if isinstance(pred, Unscorable):
                skipped.append((*key, pred.reason))
                if on_progress:
                    on_progress(len(results) + len(skipped), total, None)
                continue
            result = scorer(pred, gt, key)
            if save_meshes and out_dir is not None and result.status != "failed":
                _save_prediction(out_dir, key, pred)
            new.append(result)
            results.append(result)
            if on_progress:
                on_progress(len(results) + len(skipped), total, result)
        if store is not None:
            store.add(new)
    return _finish(root, store, results, settings, skipped, resumed, notes)


def _score_any(pred: Any, gt: GroundTruth, key: Key, options: EvalOptions) -> ObjectResult:
    if hasattr(pred, "mesh") and hasattr(pred, "seconds"):  # a pipeline Reconstruction
        return replace(score_prediction(pred.mesh, gt, key, options), recon_seconds=float(pred.seconds))
    if isinstance(pred, ReconError):
        return score_prediction(None, gt, key, options, error=str(pred))
    if isinstance(pred, str):
        return score_prediction(None, gt, key, options, error=pred)
    return score_prediction(pred, gt, key, options)


def _save_prediction(out_dir: Path, key: Key, mesh: Any) -> None:
    import trimesh

    from recon_cli.io.mesh import save_mesh

    mesh = getattr(mesh, "mesh", mesh)
    if isinstance(mesh, trimesh.Trimesh):
        save_mesh(mesh, Path(out_dir) / MESHES_DIR / key[0] / f"{key[1]}.off")


# --------------------------------------------------------------------------- producers


def evaluate_model(
    root: str | Path, backend: Backend, *, options: EvalOptions = EvalOptions(), extract: Any = None,
    stages: str = "auto", out_dir: str | Path | None = None, describe: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None, views: int = 1, view_choice: str = "first", fusion: str = "logits",
    reconstructor: Any = None,
) -> EvalRun:
    """Reconstruct each model of the split from view 0 (batched) and score it.

    ``extract`` is a :class:`recon_cli.pipeline.ExtractOptions` (default: its defaults);
    ``describe`` adds fields (weights, quality...) to the recorded settings. With
    ``out_dir`` the meshes are kept under ``out_dir/meshes/<synset>/<model>.off``.
    ``views`` > 1 fuses that many views per model (:mod:`recon_cli.fusion`, strategy
    ``fusion``): views 0..N-1 (``view_choice="first"``) or N distinct views drawn
    per model from a seed of (``options.seed``, synset, model) (``"random"``).
    ``reconstructor`` replaces the occupancy reconstructor built from ``backend``
    (the voxel model's :class:`recon_cli.voxel.VoxelReconstructor`, which fuses
    views itself and also gets the 3D-R2N2 voxel IoU column ``voxel_iou``).
    """
    from recon_cli.data.shapenet import load_view
    from recon_cli.fusion import MultiViewReconstructor, check_fusion
    from recon_cli.pipeline import ExtractOptions

    root = Path(root)
    notes: list[str] = []
    keys = list_models(root, options, notes)
    if not backend.has_stage1:
        raise ConfigError("evaluation from images needs a model with an image encoder (stage 1)")
    extract = extract or ExtractOptions()
    if views < 1:
        raise ConfigError(f"views must be at least 1, got {views}")
    if view_choice not in VIEW_CHOICES:
        raise ConfigError(f"unknown view choice {view_choice!r}; valid: {', '.join(VIEW_CHOICES)}")
    check_fusion(fusion)
    multi = views > 1 or view_choice != "first"
    rec = reconstructor or MultiViewReconstructor(backend, options=extract, stages=stages, seed=options.seed)
    voxel = reconstructor is not None and getattr(reconstructor, "stages", "") == "r2n2"
    if voxel:
        fusion = "logits"  # the recurrent unit fuses; no choice to record
    extra = {"views": views, "view_choice": view_choice, "fusion": fusion} if multi else {}
    if voxel:
        extra["voxel_threshold"] = VOXEL_IOU_THRESHOLD
    settings = _settings("model", options, {"stages": stages, "threshold": rec.options.threshold,
                                            "resolution0": extract.resolution0,
                                            "upsampling_steps": extract.upsampling_steps, **extra,
                                            **(describe or {})})

    def produce(batch: list[Key]) -> list[Any]:
        import torch

        images, ok = [], []
        out: list[Any] = [None] * len(batch)
        for i, key in enumerate(batch):
            try:
                chosen = choose_views(root / key[0] / key[1], key, views, view_choice, options.seed)
                images.append(torch.stack([load_view(root / key[0] / key[1], v, size=backend.image_size)
                                           for v in chosen]))
                ok.append(i)
            except DatasetError as exc:  # the dataset's render is missing/corrupt: skipped, like its ground truth
                out[i] = Unscorable(str(exc))
            except ReconError as exc:  # what was asked cannot be done (e.g. more views than rendered): failed
                out[i] = exc
        if images:
            made = (_reconstruct(rec, torch.stack([v[0] for v in images])) if not multi
                    else _reconstruct_views(rec, images, fusion))
            for i, mesh in zip(ok, made):
                out[i] = mesh
        return out

    score = None
    if voxel:
        def score(pred: Any, gt: GroundTruth, key: Key) -> ObjectResult:
            result = _score_any(pred, gt, key, options)
            grid = getattr(pred, "grid", None)
            if grid is None:
                return result
            return replace(result, voxel_iou=voxel_grid_iou(grid, root / key[0] / key[1]))

    return _run(root, keys, produce, options, settings, out_dir=None if out_dir is None else Path(out_dir),
                save_meshes=True, on_progress=on_progress, notes=notes, score=score)


#: 3D-R2N2's voxel IoU threshold (probability) for the extra ``voxel_iou`` column.
VOXEL_IOU_THRESHOLD = 0.4


def voxel_grid_iou(grid: np.ndarray, model_dir: Path, threshold: float = VOXEL_IOU_THRESHOLD) -> float:
    """3D-R2N2's voxel IoU: ``grid > threshold`` (R^3 probabilities) against the model's ``model.binvox``
    at the same resolution (nan when the model has no readable binvox)."""
    import torch

    from recon_cli.training.validate import iou_per_object
    from recon_cli.training.voxel import voxel_target

    try:
        target = voxel_target(model_dir, grid.shape[0])
    except DatasetError:
        return float("nan")
    values = torch.as_tensor(np.asarray(grid, dtype=np.float32)).reshape(1, -1)
    return float(iou_per_object(values, torch.from_numpy(target).reshape(1, -1).float(), threshold)[0])


def _reconstruct(rec: Any, images: Any) -> list[Any]:
    """Batched reconstruction; if the batch fails, retry one by one so that one bad input fails alone
    (its entry is then the error text, scored as failed)."""
    try:
        return list(rec.reconstruct_images(images))
    except Exception as exc:  # noqa: BLE001 - a per-object failure must not stop the run
        if len(images) == 1:
            return [_failure(exc)]
    out: list[Any] = []
    for i in range(len(images)):
        try:
            out.append(rec.reconstruct_images(images[i:i + 1])[0])
        except Exception as exc:  # noqa: BLE001
            out.append(_failure(exc))
    return out


def _reconstruct_views(rec: Any, view_sets: list[Any], fusion: str) -> list[Any]:
    """Like :func:`_reconstruct` for multi-view sets (one (V, 3, S, S) tensor per model)."""
    try:
        return list(rec.reconstruct_views(view_sets, fusion=fusion))
    except Exception as exc:  # noqa: BLE001 - a per-object failure must not stop the run
        if len(view_sets) == 1:
            return [_failure(exc)]
    out: list[Any] = []
    for views in view_sets:
        try:
            out.append(rec.reconstruct_views([views], fusion=fusion)[0])
        except Exception as exc:  # noqa: BLE001
            out.append(_failure(exc))
    return out


#: How ``views`` > 1 views of a model are chosen: the first N, or N random distinct ones (seeded per model).
VIEW_CHOICES: tuple[str, ...] = ("first", "random")


def choose_views(model_dir: Path, key: Key, n: int, choice: str, seed: int) -> list[int]:
    """The view indices to reconstruct ``key`` from; InputError when the model has fewer than ``n`` views."""
    if choice == "first" and n == 1:
        return [0]
    from recon_cli.data.layout import count_views

    available = count_views(model_dir)
    if available < n:
        raise InputError(f"{key[0]}/{key[1]}: {n} views asked for but the model has {available}")
    if choice == "first":
        return list(range(n))
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(f"{key[0]}/{key[1]}".encode())])
    return sorted(int(v) for v in rng.choice(available, size=n, replace=False))


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ReconError):
        return f"reconstruction failed: {exc}"
    return f"reconstruction failed ({type(exc).__name__}: {exc})".splitlines()[0]


def find_mesh(meshes_dir: Path, key: Key) -> Path | None:
    """``meshes_dir/<synset>/<model>.<suffix>`` for the first suffix of MESH_SUFFIXES that exists."""
    for suffix in MESH_SUFFIXES:
        path = meshes_dir / key[0] / f"{key[1]}{suffix}"
        if path.is_file():
            return path
    return None


def evaluate_meshes(
    root: str | Path, meshes_dir: str | Path, *, options: EvalOptions = EvalOptions(),
    out_dir: str | Path | None = None, on_progress: ProgressFn | None = None,
) -> EvalRun:
    """Score meshes made by any tool (in the normalised frame of the dataset), one per model of the split.

    A missing or unreadable mesh counts as failed; a file without triangles as empty.
    """
    from recon_cli.io.mesh import load_mesh

    root, meshes_dir = Path(root), Path(meshes_dir)
    if not meshes_dir.is_dir():
        raise InputError("meshes folder does not exist", path=meshes_dir)
    notes: list[str] = []
    keys = list_models(root, options, notes)
    settings = _settings("meshes", options, {"meshes": str(meshes_dir)})

    def produce(batch: list[Key]) -> list[Any]:
        out: list[Any] = []
        for key in batch:
            path = find_mesh(meshes_dir, key)
            if path is None:
                out.append(f"no mesh {key[0]}/{key[1]}.{{{','.join(s[1:] for s in MESH_SUFFIXES)}}}")
                continue
            try:
                out.append(load_mesh(path))
            except InputError as exc:
                out.append(_empty_mesh() if exc.message == "file holds no triangles" else exc)
        return out

    return _run(root, keys, produce, options, settings, out_dir=None if out_dir is None else Path(out_dir),
                save_meshes=False, on_progress=on_progress, notes=notes)


def _empty_mesh() -> trimesh.Trimesh:
    """Stand-in for a mesh file without triangles (scored as empty, not failed)."""
    import trimesh

    return trimesh.Trimesh()


def _settings(mode: str, options: EvalOptions, extra: dict[str, Any]) -> dict[str, Any]:
    cats = None if options.categories is None else list(options.categories)
    producer = extra.get("weights") or extra.get("meshes") or ""
    return {"mode": mode, "split": options.split, "seed": options.seed, "n_samples": options.n_samples,
            "categories": cats, "limit": options.limit, "shard": f"{options.shard[0]}/{options.shard[1]}",
            "producer": Path(str(producer)).name, **extra}


def evaluate_retrieval(
    root: str | Path, backend: Backend, *, options: EvalOptions = EvalOptions(), out_dir: str | Path | None = None,
    describe: dict[str, Any] | None = None, on_progress: ProgressFn | None = None,
    on_index: Callable[[int, int], None] | None = None, train_root: str | Path | None = None,
) -> EvalRun:
    """Retrieval baseline: the training shape whose view-0 embedding is nearest (see :mod:`recon_cli.retrieval`).

    The training shapes come from the train split of ``train_root`` (default: ``root``), so a
    test-only dataset can be scored against the training set of another.
    """
    from recon_cli.retrieval import build_index, embed_views, score_retrieved

    root = Path(root)
    train = Path(train_root) if train_root is not None else root
    notes: list[str] = []
    keys = list_models(root, options, notes)
    if not backend.has_stage1:
        raise ConfigError("the retrieval baseline needs a model with an image encoder (stage 1)")
    train_opts = replace(options, split="train", limit=None, shard=(0, 1))
    cache = None if out_dir is None else Path(out_dir) / RETRIEVAL_INDEX_FILE
    try:
        train_keys = list_models(train, train_opts, notes)
    except DatasetError as exc:
        hint = "" if train_root is not None else "; a test-only dataset? give --train-root ROOT (a dataset with a train split)"
        raise DatasetError(f"the retrieval baseline needs training shapes: {exc.message}{hint}", path=train) from None
    index = build_index(train, train_keys, backend, batch_size=options.batch_size, cache=cache,
                        on_progress=on_index)
    extra = {"train_models": len(index.keys), **(describe or {})}
    if train_root is not None:
        extra["train_root"] = str(train)
    settings = _settings("retrieval", options, extra)

    def produce(batch: list[Key]) -> list[Any]:
        codes, failed = embed_views(root, batch, backend)
        out: list[Any] = []
        for i, key in enumerate(batch):  # an unreadable test render is the dataset's problem: skipped
            out.append(Unscorable(failed[i]) if i in failed else index.nearest(codes[i]))
        return out

    def score(pred: Any, gt: GroundTruth, key: Key) -> ObjectResult:
        if isinstance(pred, (str, ReconError)):
            return score_prediction(None, gt, key, options, error=str(pred))
        return score_retrieved(train, pred, gt, key)

    return _run(root, keys, produce, options, settings, out_dir=None if out_dir is None else Path(out_dir),
                save_meshes=False, on_progress=on_progress, score=score, notes=notes)


# --------------------------------------------------------------------------- merge


def shard_folders(folder: Path) -> list[Path]:
    """``folder/shard-I-of-N`` sub-folders holding an objects.csv, in shard order."""
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _SHARD_RE.match(p.name)
            if m and (p / OBJECTS_FILE).is_file():
                found.append((int(m.group(2)), int(m.group(1)), p))
    return [p for _, _, p in sorted(found)]


def merge_results(sources: Sequence[str | Path], *, out_dir: str | Path | None = None,
                  root: str | Path | None = None) -> EvalRun:
    """Combine the objects.csv of ``sources`` (result folders, or folders of shard-I-of-N folders).

    The first occurrence of a model wins. Writes objects.csv, run.json and summary.json to ``out_dir``
    when given. ``root`` (the dataset) only supplies category names.
    """
    folders: list[Path] = []
    for src in map(Path, sources):
        if not src.is_dir():
            raise InputError("no such results folder", path=src)
        subs = shard_folders(src)
        # a folder's own objects.csv counts unless it is the merge target of its shards
        own_counts = not subs or out_dir is None or src.resolve() != Path(out_dir).resolve()
        own = [src] if (src / OBJECTS_FILE).is_file() and own_counts else []
        if not own and not subs:
            raise InputError(f"no {OBJECTS_FILE} here or in shard-I-of-N sub-folders", path=src)
        folders += own + subs
    rows: dict[Key, ObjectResult] = {}
    skipped: list[tuple[str, str, str]] = []
    names: dict[str, str] = category_names(root) if root is not None else {}
    settings: dict[str, Any] | None = None
    notes: list[str] = []
    seen_shards: dict[int, set[int]] = {}
    for folder in folders:
        run = _read_settings(folder)
        if settings is None:
            settings = run
        elif any(run.get(k) != settings.get(k) for k in PROTOCOL_KEYS):
            raise ConfigError("results were made with different settings; cannot merge", path=folder)
        m = _SHARD_RE.match(folder.name)
        if m:
            seen_shards.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
        for r in read_results(folder / OBJECTS_FILE):
            rows.setdefault(r.key, r)
        more_skipped, more_names = _read_summary(folder)
        skipped += more_skipped
        names.update({k: v for k, v in more_names.items() if k not in names})
    for count, got in sorted(seen_shards.items()):
        missing = sorted(set(range(count)) - got)
        if missing:
            notes.append(f"missing shard(s) {', '.join(str(i) for i in missing)} of {count}")
    settings = dict(settings or {})
    settings.pop("shard", None)
    results = sort_results(list(rows.values()))
    skipped = sorted({s for s in skipped if s[:2] not in rows})
    summary = summarize(results, names=names, settings=settings, skipped=skipped)
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_text(out / RUN_FILE, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        atomic_write_text(out / OBJECTS_FILE, results_to_csv(results))
        atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return EvalRun(results, summary, skipped, 0, None if out_dir is None else Path(out_dir), notes)


def _read_settings(folder: Path) -> dict[str, Any]:
    path = folder / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read run settings ({exc})", path=path) from exc


def _read_summary(folder: Path) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """Skipped models and category names recorded in a folder's summary.json (empty when absent)."""
    path = folder / SUMMARY_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        skipped = [(str(d["synset"]), str(d["model"]), str(d["reason"])) for d in doc.get("skipped", [])]
        names = {str(c["synset"]): str(c["name"]) for c in doc.get("categories", [])}
        return skipped, names
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return [], {}
