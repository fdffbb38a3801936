"""Validation of a ShapeNet-layout dataset (``recon data check``).

The quick check reads only npz headers (zip directory + .npy headers), the
binvox header and the jpg headers, so it scales to tens of thousands of
models. ``full=True`` also loads the arrays (finite values, ranges, unit
normals, matching loc/scale), decodes the images and the voxels.
"""

from __future__ import annotations

import ast
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from recon_cli.data import layout
from recon_cli.data.binvox import read_binvox, read_binvox_header
from recon_cli.errors import DatasetError

ERROR, WARNING = "error", "warning"
_FLOAT_KINDS = "f"


@dataclass(frozen=True)
class Issue:
    """One problem, located by synset / model / file ('' where not applicable)."""

    level: str
    synset: str
    model: str
    file: str
    problem: str

    @property
    def where(self) -> str:
        return "/".join(part for part in (self.synset, self.model, self.file) if part) or "."

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class CategorySummary:
    synset: str
    name: str
    train: int = 0
    val: int = 0
    test: int = 0
    models: int = 0          # model folders or listed models checked
    bad_models: int = 0      # models with at least one error


@dataclass
class CheckReport:
    root: Path
    issues: list[Issue] = field(default_factory=list)
    categories: list[CategorySummary] = field(default_factory=list)
    n_models: int = 0
    full: bool = False
    seconds: float = 0.0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root), "ok": self.ok, "full": self.full, "models": self.n_models,
            "errors": len(self.errors), "warnings": len(self.warnings), "seconds": round(self.seconds, 3),
            "categories": [asdict(c) for c in self.categories],
            "issues": [dict(asdict(i), where=i.where) for i in self.issues],
        }


class _Collector:
    """Collects issues, each once: ``--full`` re-reads files the header pass already found broken."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self._seen: set[tuple[str, str, str, str, str]] = set()
        self._broken: set[tuple[str, str, str]] = set()

    def add(self, level: str, synset: str, model: str, file: str, problem: str) -> None:
        key = (level, synset, model, file, problem)
        if key in self._seen:
            return
        self._seen.add(key)
        if level == ERROR:
            self._broken.add((synset, model, file))
        self.report.issues.append(Issue(level, synset, model, file, problem))

    def broken(self, synset: str, model: str, file: str) -> bool:
        """True when an error was already reported for this file."""
        return (synset, model, file) in self._broken


def check_dataset(root: str | Path, *, full: bool = False,
                  on_progress: Callable[[int, int], None] | None = None) -> CheckReport:
    """Validate layout, keys, shapes, dtypes and split files of the dataset at ``root``.

    Problems are collected in the report (errors and warnings), never raised;
    only a missing root raises DatasetError. ``on_progress(done, total)`` is
    called after each model.
    """
    start = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("is a file, not a dataset folder" if root.exists() else "dataset folder does not exist",
                           path=root)
    report = CheckReport(root=root, full=full)
    out = _Collector(report)
    metadata = _check_metadata(root, out)
    work: list[tuple[CategorySummary, str, str]] = []
    for synset in sorted(set(metadata) | {p.name for p in root.iterdir() if layout.is_synset_dir(p)}):
        summary = CategorySummary(synset, layout.short_name(metadata.get(synset, {"name": "n/a"})))
        report.categories.append(summary)
        if not (root / synset).is_dir():
            out.add(ERROR, synset, "", "", "category listed in metadata.yaml has no folder")
            continue
        if synset not in metadata and (root / layout.METADATA_FILE).is_file():
            out.add(WARNING, synset, "", "", "category folder not listed in metadata.yaml")
        work += [(summary, synset, model) for model in _check_splits(root, synset, summary, out)]
    for done, (summary, synset, model) in enumerate(work, start=1):
        n_errors = len(report.errors)
        _check_model(root / synset / model, synset, model, out, full=full)
        summary.models += 1
        summary.bad_models += len(report.errors) > n_errors
        if on_progress is not None:
            on_progress(done, len(work))
    report.n_models = len(work)
    if not report.categories:
        out.add(ERROR, "", "", "", "no category folders found")
    report.seconds = time.perf_counter() - start
    return report


def _check_metadata(root: Path, out: _Collector) -> dict[str, dict[str, Any]]:
    path = root / layout.METADATA_FILE
    if not path.is_file():
        out.add(WARNING, "", "", layout.METADATA_FILE, "missing (category names unknown)")
        return {}
    try:
        metadata = layout.read_metadata(root)
    except DatasetError as exc:
        out.add(ERROR, "", "", layout.METADATA_FILE, exc.message)
        return {}
    for synset, entry in metadata.items():
        if str(entry.get("id", synset)) != synset:
            out.add(ERROR, "", "", layout.METADATA_FILE, f"entry {synset!r} has id {entry.get('id')!r}")
    return metadata


def _check_splits(root: Path, synset: str, summary: CategorySummary, out: _Collector) -> list[str]:
    """Check the split files of one category; return the models to check (listed + folders)."""
    listed: dict[str, str] = {}
    present = [s for s in layout.SPLITS if layout.split_path(root, synset, s).is_file()]
    if not present:
        out.add(ERROR, synset, "", "", f"no split files ({', '.join(s + '.lst' for s in layout.SPLITS)})")
    for split in layout.SPLITS:
        path = layout.split_path(root, synset, split)
        name = path.name
        if not path.is_file():
            if present:  # e.g. a test-only dataset: usable for evaluation, not for training
                out.add(WARNING, synset, "", name, f"split file missing (no {split} split for this category)")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.add(ERROR, synset, "", name, f"unreadable ({exc})")
            continue
        if text.endswith("\n"):
            out.add(ERROR, synset, "", name, "trailing newline (naive readers get an empty model id)")
        lines = text.split("\n") if text else []
        if text.endswith("\n"):
            lines = lines[:-1]
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                out.add(ERROR, synset, "", name, f"line {number} is blank")
            elif line != line.strip():
                out.add(ERROR, synset, "", name, f"line {number} has surrounding whitespace: {line!r}")
        ids = layout.parse_split_text(text)
        setattr(summary, split, len(ids))
        for model in ids:
            if model in listed:
                out.add(ERROR, synset, model, name, f"also listed in {listed[model]}")
                continue
            listed[model] = name
            if not (root / synset / model).is_dir():
                out.add(ERROR, synset, model, "", f"listed in {name} but the model folder is missing")
    folders = {p.name for p in (root / synset).iterdir() if layout.is_synset_dir(p)}
    for model in sorted(folders - set(listed)):
        out.add(WARNING, synset, model, "", "model folder not listed in any split file")
    return sorted(folders)


_DESCR_RE = re.compile(r"'descr':\s*'([^']+)'")
_SHAPE_RE = re.compile(r"'shape':\s*\(([^)]*)\)")


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from an .npy header; a regex fast path, numpy's parser for anything unusual."""
    head = fh.read(8)
    if len(head) < 8 or head[:6] != b"\x93NUMPY":
        raise ValueError("not an .npy member")
    size_len = 2 if head[6] == 1 else 4
    size = int.from_bytes(fh.read(size_len), "little")
    text = fh.read(size).decode("latin1")
    descr, shape = _DESCR_RE.search(text), _SHAPE_RE.search(text)
    if descr is None or shape is None:
        literal = ast.literal_eval(text)
        return tuple(literal["shape"]), np.dtype(np.lib.format.descr_to_dtype(literal["descr"]))
    dims = tuple(int(v) for v in shape.group(1).replace(" ", "").split(",") if v)
    return dims, np.dtype(descr.group(1))


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{key: (shape, dtype)} of an npz file, reading only the zip directory and the .npy headers."""
    headers = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                headers[info.filename[:-4]] = _npy_header(fh)
    return headers


def _open_npz(model_dir: Path, rel: str, synset: str, model: str, out: _Collector
              ) -> dict[str, tuple[tuple[int, ...], np.dtype]] | None:
    path = model_dir / rel
    if not path.is_file():
        out.add(ERROR, synset, model, rel, "missing file")
        return None
    try:
        return _npz_headers(path)
    except (OSError, ValueError, EOFError, SyntaxError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        out.add(ERROR, synset, model, rel, f"corrupt npz ({type(exc).__name__}: {exc})".splitlines()[0])
        return None


def _expect(headers: dict[str, tuple[tuple[int, ...], np.dtype]], key: str, shape: tuple[int | None, ...],
            dtype: str, where: tuple[str, str, str], out: _Collector) -> tuple[int, ...] | None:
    """Check one array's presence, shape (None = any size) and dtype ('float' = any float)."""
    synset, model, rel = where
    if key not in headers:
        out.add(ERROR, synset, model, rel, f"missing key {key!r} (keys: {', '.join(sorted(headers)) or 'none'})")
        return None
    got_shape, got_dtype = headers[key]
    ok_dtype = got_dtype.kind in _FLOAT_KINDS if dtype == "float" else got_dtype == np.dtype(dtype)
    if not ok_dtype:
        out.add(ERROR, synset, model, rel, f"{key} has dtype {got_dtype}, expected {dtype}")
    if len(got_shape) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got_shape)):
        pretty = tuple("N" if s is None else s for s in shape)
        out.add(ERROR, synset, model, rel, f"{key} has shape {got_shape}, expected {pretty}")
        return None
    return got_shape


def _check_scale(headers: dict, where: tuple[str, str, str], out: _Collector) -> None:
    _expect(headers, "loc", (3,), "float", where, out)
    if "scale" in headers and headers["scale"][0] in ((), (1,)):
        _expect(headers, "scale", headers["scale"][0], "float", where, out)
    else:
        _expect(headers, "scale", (), "float", where, out)


def _check_model(model_dir: Path, synset: str, model: str, out: _Collector, *, full: bool) -> None:
    if not model_dir.is_dir():
        return  # already reported by the split check
    rel = layout.POINTS_FILE
    headers = _open_npz(model_dir, rel, synset, model, out)
    if headers is not None:
        where = (synset, model, rel)
        shape = _expect(headers, "points", (None, 3), "float16", where, out)
        if shape is not None:
            _expect(headers, "occupancies", ((shape[0] + 7) // 8,), "uint8", where, out)
        _check_scale(headers, where, out)
        _extra_keys(headers, layout.POINTS_KEYS, where, out)
    rel = layout.POINTCLOUD_FILE
    headers = _open_npz(model_dir, rel, synset, model, out)
    if headers is not None:
        where = (synset, model, rel)
        shape = _expect(headers, "points", (None, 3), "float16", where, out)
        _expect(headers, "normals", (shape[0] if shape else None, 3), "float16", where, out)
        _check_scale(headers, where, out)
        _extra_keys(headers, layout.POINTCLOUD_KEYS, where, out)
    _check_binvox(model_dir, synset, model, out, full=full)
    _check_images(model_dir, synset, model, out, full=full)
    if full:
        _check_arrays(model_dir, synset, model, out)


def _extra_keys(headers: dict, expected: dict[str, str], where: tuple[str, str, str], out: _Collector) -> None:
    extra = sorted(set(headers) - set(expected))
    if extra:
        out.add(WARNING, *where, f"unexpected key(s) {', '.join(extra)}")


def _check_binvox(model_dir: Path, synset: str, model: str, out: _Collector, *, full: bool) -> None:
    rel = layout.BINVOX_FILE
    path = model_dir / rel
    if not path.is_file():
        out.add(ERROR, synset, model, rel, "missing file")
        return
    try:
        if full:
            read_binvox(path)
        else:
            read_binvox_header(path)
    except DatasetError as exc:
        out.add(ERROR, synset, model, rel, exc.message)


def _check_images(model_dir: Path, synset: str, model: str, out: _Collector, *, full: bool) -> None:
    img_dir = model_dir / layout.IMG_DIR
    if not img_dir.is_dir():
        out.add(ERROR, synset, model, layout.IMG_DIR, "missing folder")
        return
    rel = f"{layout.IMG_DIR}/{layout.CAMERAS_FILE}"
    headers = _open_npz(model_dir, rel, synset, model, out)
    jpgs = {p.name for p in img_dir.glob("*.jpg")}
    n_views = len([k for k in headers if k.startswith("camera_mat_")]) if headers is not None else len(jpgs)
    if n_views == 0:
        out.add(ERROR, synset, model, layout.IMG_DIR, "no views (no camera_mat_i in cameras.npz)")
    for i in range(n_views):
        name = layout.view_name(i)
        if headers is not None:
            _expect(headers, f"camera_mat_{i}", (3, 3), "float", (synset, model, rel), out)
            _expect(headers, f"world_mat_{i}", (3, 4), "float", (synset, model, rel), out)
        if name not in jpgs:
            out.add(ERROR, synset, model, f"{layout.IMG_DIR}/{name}", "missing file")
            continue
        _check_jpg(img_dir / name, (synset, model, f"{layout.IMG_DIR}/{name}"), out, full=full)
    for name in sorted(jpgs - {layout.view_name(i) for i in range(n_views)}):
        out.add(WARNING, synset, model, f"{layout.IMG_DIR}/{name}", "image without a camera in cameras.npz")


def _check_jpg(path: Path, where: tuple[str, str, str], out: _Collector, *, full: bool) -> None:
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                out.add(ERROR, *where, f"not a JPEG ({im.format})")
            w, h = im.size
            if w != h:
                out.add(WARNING, *where, f"not square ({w}x{h})")
            if full:
                if w * h > 4096 * 4096:
                    out.add(ERROR, *where, f"too large ({w}x{h})")
                    return
                im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        out.add(ERROR, *where, f"unreadable image ({exc})".splitlines()[0])


def _check_arrays(model_dir: Path, synset: str, model: str, out: _Collector) -> None:
    """Deep check: values, ranges, unit normals, loc/scale agreement (full mode)."""
    from recon_cli.data.layout import load_occupancy, load_pointcloud

    half = layout.BOX_SIZE / 2 + 1e-2
    try:
        if out.broken(synset, model, layout.POINTS_FILE):
            raise _AlreadyReported
        points, occ = load_occupancy(model_dir)
        if not np.all(np.isfinite(points)):
            out.add(ERROR, synset, model, layout.POINTS_FILE, "non-finite points")
        elif np.abs(points).max() > half:
            out.add(ERROR, synset, model, layout.POINTS_FILE, f"points outside the cube of side {layout.BOX_SIZE}")
        if not occ.any():
            out.add(WARNING, synset, model, layout.POINTS_FILE, "no point is inside the shape")
    except DatasetError as exc:
        out.add(ERROR, synset, model, layout.POINTS_FILE, exc.message)
    except _AlreadyReported:
        pass
    try:
        if out.broken(synset, model, layout.POINTCLOUD_FILE):
            raise _AlreadyReported
        surface, normals = load_pointcloud(model_dir)
        if not (np.all(np.isfinite(surface)) and np.all(np.isfinite(normals))):
            out.add(ERROR, synset, model, layout.POINTCLOUD_FILE, "non-finite points or normals")
        else:
            length = np.linalg.norm(normals, axis=1)
            if np.any(np.abs(length - 1.0) > 0.02):
                out.add(ERROR, synset, model, layout.POINTCLOUD_FILE,
                        f"{int(np.sum(np.abs(length - 1) > 0.02))} normals are not unit length")
            if np.abs(surface).max() > 0.5 + 1e-2:
                out.add(WARNING, synset, model, layout.POINTCLOUD_FILE, "surface points outside [-0.5, 0.5]^3")
    except DatasetError as exc:
        out.add(ERROR, synset, model, layout.POINTCLOUD_FILE, exc.message)
    except _AlreadyReported:
        pass
    _check_loc_scale(model_dir, synset, model, out)


class _AlreadyReported(Exception):
    """The header pass already reported this file broken; the deep pass says nothing more."""


def _check_loc_scale(model_dir: Path, synset: str, model: str, out: _Collector) -> None:
    values = []
    for rel in (layout.POINTS_FILE, layout.POINTCLOUD_FILE):
        try:
            with np.load(model_dir / rel, allow_pickle=False) as data:
                values.append((np.asarray(data["loc"], float).ravel(), float(np.asarray(data["scale"]).ravel()[0])))
        except Exception:  # noqa: BLE001 - already reported by the other checks
            return
    (loc_a, scale_a), (loc_b, scale_b) = values
    if not (np.allclose(loc_a, loc_b, atol=1e-5) and np.isclose(scale_a, scale_b, rtol=1e-5)):
        out.add(ERROR, synset, model, layout.POINTCLOUD_FILE, "loc/scale differ from points.npz")
    if not scale_a > 0:
        out.add(ERROR, synset, model, layout.POINTS_FILE, f"scale is {scale_a}, expected > 0")
