"""Minimal binvox (version 1) writer and reader for the 32^3 model.binvox files.

Our grids cover the normalised cube [-0.5, 0.5]^3: translate = (-0.5,)*3,
scale = 1. Arrays are indexed [x, y, z]; the file stores them in binvox
order (x slowest, then z, then y fastest) as run-length pairs (value, count).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recon_cli.errors import DatasetError
from recon_cli.io.atomic import atomic_write_bytes


def encode_binvox(voxels: np.ndarray, translate: tuple[float, float, float] = (-0.5, -0.5, -0.5),
                  scale: float = 1.0) -> bytes:
    """Bytes of a binvox file holding the bool grid ``voxels`` (D,D,D) indexed [x, y, z]."""
    vox = np.asarray(voxels, dtype=bool)
    if vox.ndim != 3:
        raise ValueError(f"voxels must be 3-D, got shape {vox.shape}")
    flat = vox.transpose(0, 2, 1).ravel().astype(np.uint8)  # binvox order: x, z, y
    header = (f"#binvox 1\ndim {vox.shape[0]} {vox.shape[1]} {vox.shape[2]}\n"
              f"translate {translate[0]:g} {translate[1]:g} {translate[2]:g}\nscale {scale:g}\ndata\n")
    return header.encode("ascii") + _rle(flat)


def _rle(flat: np.ndarray) -> bytes:
    if flat.size == 0:
        return b""
    change = np.nonzero(np.diff(flat))[0] + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    values, counts = [], []
    for value, length in zip(flat[starts], lengths):
        full, rest = divmod(int(length), 255)
        values += [value] * full + ([value] if rest else [])
        counts += [255] * full + ([rest] if rest else [])
    pairs = np.stack([np.asarray(values, np.uint8), np.asarray(counts, np.uint8)], axis=1)
    return pairs.tobytes()


def write_binvox(path: str | Path, voxels: np.ndarray, translate: tuple[float, float, float] = (-0.5, -0.5, -0.5),
                 scale: float = 1.0) -> Path:
    """Write a binvox file atomically."""
    atomic_write_bytes(path, encode_binvox(voxels, translate, scale))
    return Path(path)


def read_binvox_header(path: str | Path) -> tuple[tuple[int, int, int], tuple[float, float, float], float, int]:
    """(dims, translate, scale, data offset) from a binvox header; DatasetError when malformed."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc
    return _parse_header(head, path)


def _parse_header(data: bytes, path: Path) -> tuple[tuple[int, int, int], tuple[float, float, float], float, int]:
    if not data.startswith(b"#binvox"):
        raise DatasetError("not a binvox file (no '#binvox' header)", path=path)
    end = data.find(b"data\n")
    if end < 0:
        raise DatasetError("binvox header has no 'data' line", path=path)
    dims, translate, scale = None, (0.0, 0.0, 0.0), 1.0
    try:
        for line in data[:end].decode("ascii").splitlines()[1:]:
            parts = line.split()
            if parts and parts[0] == "dim":
                dims = tuple(int(v) for v in parts[1:4])
            elif parts and parts[0] == "translate":
                translate = tuple(float(v) for v in parts[1:4])
            elif parts and parts[0] == "scale":
                scale = float(parts[1])
    except (ValueError, UnicodeDecodeError, IndexError) as exc:
        raise DatasetError(f"malformed binvox header ({exc})", path=path) from exc
    if dims is None or len(dims) != 3 or min(dims) <= 0:
        raise DatasetError("binvox header has no valid 'dim' line", path=path)
    return dims, translate, scale, end + len(b"data\n")  # type: ignore[return-value]


def read_binvox(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], float]:
    """(voxels bool (D,D,D) indexed [x, y, z], translate, scale) of a binvox file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read ({exc})", path=path) from exc
    dims, translate, scale, offset = _parse_header(data[:512], path)
    body = np.frombuffer(data[offset:], dtype=np.uint8)
    if body.size % 2:
        raise DatasetError("binvox data has an odd number of bytes", path=path)
    values, counts = body[0::2], body[1::2]
    total = int(dims[0]) * int(dims[1]) * int(dims[2])
    if int(counts.sum(dtype=np.int64)) != total:
        raise DatasetError(f"binvox data holds {int(counts.sum())} voxels, expected {total}", path=path)
    flat = np.repeat(values.astype(bool), counts)
    return flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1), translate, scale
