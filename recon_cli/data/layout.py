"""File names, constants and small read/write helpers of the ShapeNet layout.

The layout (Occupancy Networks family)::

    <root>/metadata.yaml                      {synset: {id: synset, name: "chair,..."}}
    <root>/<synset>/{train,val,test}.lst      model ids, '\\n' separated, no trailing newline
    <root>/<synset>/<model>/points.npz        points (N,3) f16, occupancies packbits u8, loc (3,), scale ()
    <root>/<synset>/<model>/pointcloud.npz    points (N,3) f16, normals (N,3) f16, loc, scale
    <root>/<synset>/<model>/model.binvox      32^3 voxels
    <root>/<synset>/<model>/img_choy2016/NNN.jpg + cameras.npz (camera_mat_i, world_mat_i)

Coordinates are normalised: original = normalised * scale + loc.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from recon_cli.data.categories import LEGACY_SYNSETS, LONG_NAMES, NAMES, SYNSETS, canonical_synset, warn_legacy
from recon_cli.errors import DatasetError, InputError
from recon_cli.io.atomic import atomic_write_text

METADATA_FILE = "metadata.yaml"
SPLITS: tuple[str, ...] = ("train", "val", "test")
POINTS_FILE = "points.npz"
POINTCLOUD_FILE = "pointcloud.npz"
BINVOX_FILE = "model.binvox"
IMG_DIR = "img_choy2016"
CAMERAS_FILE = "cameras.npz"

N_POINTS = 100_000          #: occupancy and surface samples per model
N_VIEWS = 24                #: renders per model
IMAGE_SIZE = 137            #: render side in pixels
VOXEL_RES = 32              #: binvox resolution
PADDING = 0.1               #: query points live in the cube of side 1 + PADDING
BOX_SIZE = 1.0 + PADDING

#: The file written last by the builder: a model is finished when it exists.
FINAL_FILE = POINTS_FILE

POINTS_KEYS: dict[str, str] = {"points": "float16", "occupancies": "uint8", "loc": "float", "scale": "float"}
POINTCLOUD_KEYS: dict[str, str] = {"points": "float16", "normals": "float16", "loc": "float", "scale": "float"}

#: Largest render accepted before decoding (pixels).
MAX_VIEW_PIXELS = 4096 * 4096

_SYNSET_RE = re.compile(r"^\d{8}$")
_SAFE_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def view_name(view: int) -> str:
    """File name of render ``view``: 0 -> '000.jpg'."""
    return f"{view:03d}.jpg"


def split_path(root: str | Path, synset: str, split: str) -> Path:
    """Path of ``<root>/<synset>/<split>.lst``."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return Path(root) / synset / f"{split}.lst"


def model_files(n_views: int = N_VIEWS) -> list[str]:
    """Relative paths of every file of a model; :data:`FINAL_FILE` comes last."""
    files = [POINTCLOUD_FILE, BINVOX_FILE, f"{IMG_DIR}/{CAMERAS_FILE}"]
    files += [f"{IMG_DIR}/{view_name(i)}" for i in range(n_views)]
    return files + [FINAL_FILE]


def is_model_complete(model_dir: str | Path, n_views: int = N_VIEWS) -> bool:
    """True when every file of the model exists (cheap: stat calls only)."""
    model_dir = Path(model_dir)
    return all((model_dir / rel).is_file() for rel in model_files(n_views))


def parse_split_text(text: str) -> list[str]:
    """Model ids of a split file; blank lines and a trailing newline are tolerated."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_split(root: str | Path, synset: str, split: str) -> list[str]:
    """Model ids listed in ``<root>/<synset>/<split>.lst`` ([] when the file is missing)."""
    path = split_path(root, synset, split)
    if not path.is_file():
        return []
    try:
        return parse_split_text(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read split file ({exc})", path=path) from exc


def write_split(root: str | Path, synset: str, split: str, model_ids: Iterable[str]) -> Path:
    """Write a split file atomically: ids joined by '\\n', never a trailing newline."""
    path = split_path(root, synset, split)
    atomic_write_text(path, "\n".join(model_ids))
    return path


def is_synset_dir(path: Path) -> bool:
    """A category folder: a directory whose name does not start with '.'."""
    return path.is_dir() and not path.name.startswith(".")


def read_metadata(root: str | Path) -> dict[str, dict[str, Any]]:
    """``{synset: {"id": synset, "name": "..."}}`` from metadata.yaml.

    Without metadata.yaml the category folders of ``root`` are listed and
    named from the 13 standard categories where known ('n/a' otherwise),
    as the reference loader does.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("is a file, not a dataset folder" if root.exists() else "dataset folder does not exist",
                           path=root)
    path = root / METADATA_FILE
    if not path.is_file():
        folders = [p.name for p in sorted(root.iterdir()) if is_synset_dir(p)]
        for name in folders:
            warn_legacy(name, str(root))
        return {name: {"id": name, "name": LONG_NAMES.get(canonical_synset(name), "n/a")} for name in folders}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read metadata ({str(exc).splitlines()[0]})", path=path) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DatasetError("metadata.yaml must map synset ids to {id, name}", path=path)
    meta: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        entry = dict(value) if isinstance(value, dict) else {}
        entry.setdefault("id", str(key))
        entry.setdefault("name", "n/a")
        meta[str(key)] = entry
        warn_legacy(str(key), str(root))
    return meta


def write_metadata(root: str | Path, metadata: dict[str, dict[str, Any]]) -> Path:
    """Write metadata.yaml atomically (synsets sorted)."""
    path = Path(root) / METADATA_FILE
    doc = {str(k): {"id": str(v.get("id", k)), "name": str(v.get("name", "n/a"))}
           for k, v in sorted(metadata.items())}
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=True, allow_unicode=True))
    return path


def short_name(entry: dict[str, Any]) -> str:
    """First comma-separated token of a metadata name ('car,auto,...' -> 'car')."""
    return str(entry.get("name", "n/a")).split(",")[0].strip()


def resolve_categories(metadata: dict[str, dict[str, Any]], categories: Sequence[str] | None) -> list[str]:
    """Synset ids of ``categories`` (synset ids or names) within ``metadata``; None means all.

    A name matches a standard category name or any comma-separated token of a
    metadata name (case-insensitive), so user-built categories are found too.
    """
    if categories is None:
        return sorted(metadata)
    out: list[str] = []
    for raw in categories:
        key = raw.strip()
        if not key:
            continue
        synset = _lookup(metadata, key)
        if synset is None:
            names = ", ".join(f"{short_name(v)} ({k})" for k, v in sorted(metadata.items())) or "none"
            raise InputError(f"category {key!r} is not in this dataset; available: {names}")
        if synset not in out:
            out.append(synset)
    return out


def _lookup(metadata: dict[str, dict[str, Any]], key: str) -> str | None:
    if key in metadata:
        return key
    low = key.lower()
    for synset, entry in metadata.items():
        tokens = [t.strip().lower() for t in str(entry.get("name", "")).split(",")]
        if low in tokens:
            return synset
    if low in NAMES and NAMES[low] in metadata:
        return NAMES[low]
    legacy = [old for old, new in LEGACY_SYNSETS.items() if low in NAMES and NAMES[low] == new and old in metadata]
    return legacy[0] if legacy else None


def sanitize_id(text: str) -> str:
    """A safe model id: characters outside [A-Za-z0-9_.-] become '_' (never empty, no leading '.')."""
    out = _SAFE_RE.sub("_", text.strip()).lstrip(".")
    return out or "model"


def is_synset_id(text: str) -> bool:
    """True for an 8-digit synset id."""
    return bool(_SYNSET_RE.match(text))


def category_synset(folder_name: str, taken: Iterable[str] = ()) -> tuple[str, str]:
    """(synset id, name) for a category folder or ``--category`` value.

    An 8-digit name is used as is; a standard category name maps to its
    synset; any other name gets a derived id '9' + 7 digits of a stable hash
    (collisions with ``taken`` are stepped over) and keeps its name.
    """
    key = folder_name.strip()
    if is_synset_id(key):
        if key in LEGACY_SYNSETS:
            warn_legacy(key, folder_name)
            key = canonical_synset(key)
        return key, LONG_NAMES.get(key, SYNSETS.get(key, key))
    if key.lower() in NAMES:
        synset = NAMES[key.lower()]
        return synset, LONG_NAMES[synset]
    taken_set = set(taken)
    value = _stable_hash(key.lower()) % 10_000_000
    while True:
        synset = f"9{value:07d}"
        if synset not in taken_set and synset not in SYNSETS:
            return synset, key
        value = (value + 1) % 10_000_000


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


# --- array and image files (numpy / PIL only; the torch reader is in shapenet.py) ---


def _load_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError("missing file", path=path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DatasetError(f"missing key(s) {', '.join(missing)}", path=path)
            return {k: data[k] for k in keys}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"corrupt npz ({type(exc).__name__}: {exc})".splitlines()[0], path=path) from exc


def load_occupancy(model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """points (N,3) float32 and occupancies (N,) bool from points.npz (N = 100k as built)."""
    path = Path(model_dir) / POINTS_FILE
    data = _load_npz(path, ("points", "occupancies"))
    points = data["points"]
    if points.ndim != 2 or points.shape[1] != 3:
        raise DatasetError(f"points has shape {points.shape}, expected (N, 3)", path=path)
    packed = data["occupancies"]
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size * 8 < len(points):
        raise DatasetError(f"occupancies must be packbits uint8 of {len(points)} bits, got {packed.dtype} {packed.shape}",
                           path=path)
    occ = np.unpackbits(packed)[: len(points)].astype(bool)
    return points.astype(np.float32), occ


def load_pointcloud(model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Surface points (N,3) float32 and their unit normals (N,3) float32 from pointcloud.npz."""
    path = Path(model_dir) / POINTCLOUD_FILE
    data = _load_npz(path, ("points", "normals"))
    points, normals = data["points"], data["normals"]
    if points.ndim != 2 or points.shape[1] != 3 or normals.shape != points.shape:
        raise DatasetError(f"points {points.shape} / normals {normals.shape} must both be (N, 3)", path=path)
    return points.astype(np.float32), normals.astype(np.float32)


def load_cameras(model_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """K (V,3,3) and [R|t] (V,3,4) float32 from img_choy2016/cameras.npz."""
    path = Path(model_dir) / IMG_DIR / CAMERAS_FILE
    n = count_views(model_dir)
    data = _load_npz(path, [f"camera_mat_{i}" for i in range(n)] + [f"world_mat_{i}" for i in range(n)])
    K = np.stack([data[f"camera_mat_{i}"] for i in range(n)]).astype(np.float32)
    Rt = np.stack([data[f"world_mat_{i}"] for i in range(n)]).astype(np.float32)
    return K, Rt


def count_views(model_dir: str | Path) -> int:
    """Number of consecutive renders 000.jpg, 001.jpg, ... of a model."""
    img_dir = Path(model_dir) / IMG_DIR
    n = 0
    while (img_dir / view_name(n)).is_file():
        n += 1
    return n


def open_view(model_dir: str | Path, view: int) -> Image.Image:
    """Decode render ``view`` as an RGB PIL image (alpha composited on white)."""
    path = Path(model_dir) / IMG_DIR / view_name(view)
    if not path.is_file():
        raise DatasetError("missing render", path=path)
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_VIEW_PIXELS:
                raise DatasetError(f"render is too large ({im.size[0]}x{im.size[1]})", path=path)
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, im).convert("RGB")
            return im.convert("RGB")
    except DatasetError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"corrupt image ({exc})".splitlines()[0], path=path) from exc
