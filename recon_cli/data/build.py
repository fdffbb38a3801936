"""Meshes -> dataset in the ShapeNet layout (``recon data build``).

Per model: normalise (bbox centre at the origin, longest side 1; the file's
``loc``/``scale`` satisfy original = normalised * scale + loc), label
``n_points`` uniform points of the cube of side 1.1 with
:func:`recon_cli.data.inside.inside_mask`, sample as many area-weighted
surface points with their face normals, voxelise 32^3 (a voxel is full when
its centre is inside or a surface sample falls in it), render the views
(:mod:`recon_cli.data.render`) and write every file atomically, points.npz
last: a model is finished when points.npz exists.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from recon_cli.data import layout
from recon_cli.data.binvox import encode_binvox
from recon_cli.data.frame import to_canonical
from recon_cli.data.inside import inside_mask
from recon_cli.data.render import RenderOptions, render_views
from recon_cli.errors import InputError, ReconError
from recon_cli.io.atomic import atomic_path, atomic_write_bytes

MeshSource = Path | Callable[[], trimesh.Trimesh]


@dataclass(frozen=True)
class ModelJob:
    """One model to build: a mesh file or a picklable mesh factory (functools.partial).

    ``rotation`` (3x3 nested tuples, canonical = R @ source) turns a mesh from its source frame
    into the canonical frame (+y up, front +x); None keeps it as it is.
    """

    synset: str
    model_id: str
    source: MeshSource
    seed: int
    rotation: tuple[tuple[float, ...], ...] | None = None


@dataclass
class ModelResult:
    """Outcome of one job; ``skipped`` means it was already finished (resume)."""

    synset: str
    model_id: str
    ok: bool
    error: str | None = None
    skipped: bool = False
    seconds: float = 0.0
    done: int = 0     # jobs finished so far, this one included
    total: int = 0    # jobs in the run
    warnings: list[str] = field(default_factory=list)   # from the mesh source (metadata["warnings"])


@dataclass
class BuildReport:
    """What ``write_dataset`` did."""

    root: Path
    results: list[ModelResult] = field(default_factory=list)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)   # synset -> split -> count
    seconds: float = 0.0

    @property
    def n_built(self) -> int:
        return sum(r.ok and not r.skipped for r in self.results)

    @property
    def n_skipped(self) -> int:
        return sum(r.skipped for r in self.results)

    @property
    def failed(self) -> list[ModelResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able summary."""
        return {
            "root": str(self.root), "built": self.n_built, "skipped": self.n_skipped,
            "failed": len(self.failed), "seconds": round(self.seconds, 3), "splits": self.splits,
            "errors": [{"synset": r.synset, "model": r.model_id, "error": r.error} for r in self.failed],
            "models": [asdict(r) for r in self.results],
        }


def normalize_mesh(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, np.ndarray, float]:
    """(normalised copy, loc (3,), scale): bbox centre at the origin, longest side 1.

    ShapeNet convention: original = normalised * scale + loc.
    """
    lo, hi = mesh.bounds
    loc = (lo + hi) / 2.0
    scale = float(np.max(hi - lo))
    if not np.isfinite(scale) or scale <= 0:
        raise InputError("mesh has a degenerate bounding box (zero size)")
    out = mesh.copy()
    out.vertices = (np.asarray(mesh.vertices, dtype=np.float64) - loc) / scale
    return out, loc.astype(np.float32), scale


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def voxelize(mesh: trimesh.Trimesh, surface: np.ndarray, resolution: int = layout.VOXEL_RES) -> np.ndarray:
    """(R,R,R) bool [x,y,z] over [-0.5,0.5]^3: centre inside the mesh or a surface sample in the voxel."""
    centres = (np.arange(resolution) + 0.5) / resolution - 0.5
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1).reshape(-1, 3)
    vox = inside_mask(mesh, grid).reshape(resolution, resolution, resolution)
    idx = np.clip(np.floor((surface + 0.5) * resolution).astype(int), 0, resolution - 1)
    vox[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return vox


def write_model(mesh: trimesh.Trimesh, model_dir: Path, *, seed: int,
                render: RenderOptions = RenderOptions(), n_points: int = layout.N_POINTS) -> None:
    """Normalise, sample, label, voxelise, render and write ALL files of one model atomically.

    The model counts as finished only when its last file (points.npz) is in place.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / layout.FINAL_FILE).unlink(missing_ok=True)  # an interrupted rewrite is not "finished"
    rng = np.random.default_rng(seed)
    norm, loc, scale = normalize_mesh(mesh)
    scale_arr = np.asarray(scale, dtype=np.float32)

    surface, face_idx = trimesh.sample.sample_surface(norm, n_points, seed=int(rng.integers(2**31)))[:2]
    normals = np.asarray(norm.face_normals, dtype=np.float64)[face_idx]
    atomic_write_bytes(model_dir / layout.POINTCLOUD_FILE, _npz_bytes(
        points=surface.astype(np.float16), normals=normals.astype(np.float16), loc=loc, scale=scale_arr))

    atomic_write_bytes(model_dir / layout.BINVOX_FILE, encode_binvox(voxelize(norm, surface)))

    _write_views(norm, model_dir / layout.IMG_DIR, render, rng)

    points = rng.uniform(-layout.BOX_SIZE / 2, layout.BOX_SIZE / 2, (n_points, 3)).astype(np.float16)
    occ = inside_mask(norm, points.astype(np.float64))  # labels of the stored (float16) coordinates
    atomic_write_bytes(model_dir / layout.POINTS_FILE, _npz_bytes(
        points=points, occupancies=np.packbits(occ), loc=loc, scale=scale_arr))


def _write_views(mesh: trimesh.Trimesh, img_dir: Path, render: RenderOptions, rng: np.random.Generator) -> None:
    images, K, Rt = render_views(mesh, render, rng)
    img_dir.mkdir(parents=True, exist_ok=True)
    for stale in img_dir.glob("[0-9][0-9][0-9].jpg"):
        if int(stale.stem) >= render.n_views:
            stale.unlink()
    for i, image in enumerate(images):
        atomic_write_bytes(img_dir / layout.view_name(i), _jpeg_bytes(image, render.jpeg_quality))
    cams = {f"camera_mat_{i}": K[i] for i in range(len(K))}
    cams.update({f"world_mat_{i}": Rt[i] for i in range(len(Rt))})
    atomic_write_bytes(img_dir / layout.CAMERAS_FILE, _npz_bytes(**cams))


def _load_source(source: MeshSource) -> trimesh.Trimesh:
    if isinstance(source, (str, Path)):
        from recon_cli.io.mesh import load_mesh

        return load_mesh(source)
    mesh = source()
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError("mesh factory returned no triangles")
    return mesh


def build_model(job: ModelJob, root: Path, render: RenderOptions, n_points: int) -> ModelResult:
    """Build one job; failures become a ModelResult with ``error`` (never raised)."""
    start = time.perf_counter()
    warnings: list[str] = []
    try:
        mesh = to_canonical(_load_source(job.source), job.rotation)
        warnings = [str(w) for w in mesh.metadata.get("warnings", [])]
        write_model(mesh, Path(root) / job.synset / job.model_id, seed=job.seed, render=render, n_points=n_points)
    except ReconError as exc:
        return ModelResult(job.synset, job.model_id, False, str(exc), seconds=time.perf_counter() - start,
                           warnings=warnings)
    except Exception as exc:  # noqa: BLE001 - one bad mesh must not stop a batch
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return ModelResult(job.synset, job.model_id, False, message, seconds=time.perf_counter() - start,
                           warnings=warnings)
    return ModelResult(job.synset, job.model_id, True, seconds=time.perf_counter() - start, warnings=warnings)


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3 or any(s < 0 for s in split) or not np.isclose(sum(split), 1.0, atol=1e-3):
        raise InputError(f"split must be three non-negative shares summing to 1 (train/val/test), got {tuple(split)}")
    return float(split[0]), float(split[1]), float(split[2])


def assign_splits(model_ids: Sequence[str], split: Sequence[float], seed: int, synset: str) -> dict[str, list[str]]:
    """Shuffle the sorted ids with a fixed seed and cut them into train/val/test (sorted lists)."""
    train, val, _ = _check_split(split)
    ids = sorted(model_ids)
    rng = np.random.default_rng([seed, int(hashlib.sha1(synset.encode()).hexdigest()[:8], 16)])
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_train = int(round(train * len(ids)))
    n_val = min(int(round(val * len(ids))), len(ids) - n_train)
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {k: sorted(v) for k, v in parts.items()}


def write_dataset(root: Path, jobs: Sequence[ModelJob], *, names: dict[str, str],
                  split: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0, workers: int = 1,
                  overwrite: bool = False, render: RenderOptions = RenderOptions(),
                  n_points: int = layout.N_POINTS,
                  on_progress: Callable[[ModelResult], None] | None = None) -> BuildReport:
    """Build ``jobs`` under ``root`` (parallel, resumable), then write split files and metadata.yaml.

    Finished models are skipped unless ``overwrite``. Per-model failures are
    recorded in the report, not raised; failed models are left out of the splits.
    """
    start = time.perf_counter()
    _check_split(split)
    root = Path(root)
    seen: set[tuple[str, str]] = set()
    for job in jobs:
        if (job.synset, job.model_id) in seen:
            raise InputError(f"duplicate model {job.synset}/{job.model_id}")
        if layout.sanitize_id(job.model_id) != job.model_id or not layout.is_synset_id(job.synset):
            raise InputError(f"bad synset/model id {job.synset}/{job.model_id}")
        seen.add((job.synset, job.model_id))
    root.mkdir(parents=True, exist_ok=True)
    report = BuildReport(root=root)
    todo = []
    for job in jobs:
        if not overwrite and layout.is_model_complete(root / job.synset / job.model_id, render.n_views):
            _record(report, ModelResult(job.synset, job.model_id, True, skipped=True), len(jobs), on_progress)
        else:
            todo.append(job)
    for result in _run_jobs(todo, root, render, n_points, workers):
        _record(report, result, len(jobs), on_progress)
    _write_index(root, jobs, report, names, split, seed)
    report.seconds = time.perf_counter() - start
    return report


def _record(report: BuildReport, result: ModelResult, total: int,
            on_progress: Callable[[ModelResult], None] | None) -> None:
    report.results.append(result)
    result.done, result.total = len(report.results), total
    if on_progress is not None:
        on_progress(result)


def _run_jobs(jobs: Sequence[ModelJob], root: Path, render: RenderOptions, n_points: int, workers: int):
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield build_model(job, root, render, n_points)
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(build_model, job, root, render, n_points): job for job in jobs}
        try:
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its job only
                    yield ModelResult(job.synset, job.model_id, False, f"worker failed: {type(exc).__name__}: {exc}")
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _write_index(root: Path, jobs: Sequence[ModelJob], report: BuildReport, names: dict[str, str],
                 split: Sequence[float], seed: int) -> None:
    ok = {(r.synset, r.model_id) for r in report.results if r.ok}
    by_synset: dict[str, list[str]] = {}
    for job in jobs:
        if (job.synset, job.model_id) in ok:
            by_synset.setdefault(job.synset, []).append(job.model_id)
    for synset, ids in sorted(by_synset.items()):
        parts = assign_splits(ids, split, seed, synset)
        for name, members in parts.items():
            layout.write_split(root, synset, name, members)
        report.splits[synset] = {k: len(v) for k, v in parts.items()}
    metadata = layout.read_metadata(root) if (root / layout.METADATA_FILE).is_file() else {}
    for synset in sorted({job.synset for job in jobs}):
        metadata[synset] = {"id": synset, "name": names.get(synset, metadata.get(synset, {}).get("name", synset))}
    layout.write_metadata(root, metadata)


def scan_folder(meshes_dir: Path, *, category: str | None = None, seed: int = 0,
                rotation: np.ndarray | None = None) -> tuple[list[ModelJob], dict[str, str]]:
    """Jobs and {synset: name} for a folder of meshes.

    With ``category`` the mesh files directly in ``meshes_dir`` form that
    category; otherwise each subfolder is a category (8-digit synset id, a
    standard category name, or any other name, which gets a derived id).
    ``rotation`` (see :func:`recon_cli.data.frame.resolve_frame`) takes the
    meshes from their source frame to the canonical one (None: already canonical).
    """
    rot = None if rotation is None else tuple(tuple(float(v) for v in row) for row in np.asarray(rotation))
    from recon_cli.io.mesh import READABLE_SUFFIXES

    meshes_dir = Path(meshes_dir)
    if not meshes_dir.is_dir():
        raise InputError("meshes folder does not exist", path=meshes_dir)

    def mesh_files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES and not p.name.startswith("."))

    groups: list[tuple[str, list[Path]]] = []
    if category is not None:
        groups.append((category, mesh_files(meshes_dir)))
    else:
        if mesh_files(meshes_dir):
            raise InputError("mesh files found directly in the folder: pass --category NAME, "
                             "or put them in one subfolder per category", path=meshes_dir)
        groups = [(p.name, mesh_files(p)) for p in sorted(meshes_dir.iterdir()) if layout.is_synset_dir(p)]
    jobs: list[ModelJob] = []
    names: dict[str, str] = {}
    for folder_name, files in groups:
        synset, name = layout.category_synset(folder_name, taken=[s for s in names])
        names[synset] = name
        used: set[str] = set()
        for path in files:
            model_id = _unique(layout.sanitize_id(path.stem), used)
            jobs.append(ModelJob(synset, model_id, path, _job_seed(seed, synset, model_id), rot))
    if not jobs:
        raise InputError(f"no mesh files ({', '.join(READABLE_SUFFIXES)}) found", path=meshes_dir)
    return jobs, names


def _unique(model_id: str, used: set[str]) -> str:
    out, n = model_id, 2
    while out in used:
        out, n = f"{model_id}_{n}", n + 1
    used.add(out)
    return out


def _job_seed(seed: int, synset: str, model_id: str) -> int:
    digest = hashlib.sha1(f"{seed}/{synset}/{model_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def build_from_folder(meshes_dir: Path, root: Path, *, category: str | None = None,
                      split: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0, workers: int = 1,
                      overwrite: bool = False, render: RenderOptions = RenderOptions(),
                      n_points: int = layout.N_POINTS, rotation: np.ndarray | None = None,
                      on_progress: Callable[[ModelResult], None] | None = None) -> BuildReport:
    """``recon data build``: scan ``meshes_dir`` (see :func:`scan_folder`) and write the dataset."""
    root = Path(root)
    if root.resolve() == Path(meshes_dir).resolve():
        raise InputError("output folder must differ from the meshes folder", path=root)
    jobs, names = scan_folder(meshes_dir, category=category, seed=seed, rotation=rotation)
    return write_dataset(root, jobs, names=names, split=split, seed=seed, workers=workers, overwrite=overwrite,
                         render=render, n_points=n_points, on_progress=on_progress)
