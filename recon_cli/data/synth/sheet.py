"""Contact sheet of a dataset: one row of renders (view 000) per category.

With ``canonical=True`` every tile is drawn from the same canonical viewpoint instead (the
surface points of ``pointcloud.npz`` splatted with a z-buffer, shaded by their normals; camera
in front-right of the object: azimuth 60 degrees from +z towards +x, elevation 25), so a model in
the wrong frame or the wrong category stands out (all fronts face +x: towards the viewer, a
little to the right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from recon_cli.data.layout import IMG_DIR, POINTCLOUD_FILE, SPLITS, read_metadata, read_split, short_name, view_name
from recon_cli.errors import DatasetError, InputError
from recon_cli.io.atomic import atomic_path

LABEL_WIDTH = 110
MAX_TILE = 512


def _models(root: Path, synset: str, split: str | None) -> list[str]:
    """Model ids of a category (one split, or all splits in order, else the folders)."""
    splits = [split] if split else list(SPLITS)
    ids = [m for s in splits for m in read_split(root, synset, s)]
    if not ids and split is None:
        ids = sorted(p.name for p in (root / synset).iterdir() if p.is_dir()) if (root / synset).is_dir() else []
    return list(dict.fromkeys(ids))


def _tile(path: Path, size: int) -> Image.Image | None:
    """The render at ``path`` fitted to ``size`` x ``size`` (None when missing or unreadable)."""
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > 4096 * 4096:
                return None
            return im.convert("RGB").resize((size, size), Image.BILINEAR)
    except (OSError, ValueError):
        return None


CANONICAL_AZIMUTH, CANONICAL_ELEVATION = 60.0, 25.0


def canonical_tile(cloud_npz: Path, size: int) -> Image.Image | None:
    """The surface points of a model drawn from the canonical viewpoint (None when unreadable)."""
    from recon_cli.data.render import RenderOptions, intrinsics, look_at

    try:
        with np.load(cloud_npz) as data:
            pts = np.asarray(data["points"], dtype=np.float64)
            normals = np.asarray(data["normals"], dtype=np.float64)
    except (OSError, ValueError, KeyError):
        return None
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        return None
    ss = size
    K, Rt = intrinsics(ss, RenderOptions().focal), look_at(CANONICAL_AZIMUTH, CANONICAL_ELEVATION, 1.6)
    cam = pts @ Rt[:, :3].T + Rt[:, 3]
    uv = cam @ K.T
    col = np.floor(uv[:, 0] / uv[:, 2]).astype(np.int64)
    row = np.floor(uv[:, 1] / uv[:, 2]).astype(np.int64)
    ok = (cam[:, 2] > 1e-6) & (col >= 0) & (col < ss) & (row >= 0) & (row < ss)
    n_cam = normals @ Rt[:, :3].T
    n_cam /= np.maximum(np.linalg.norm(n_cam, axis=1, keepdims=True), 1e-9)
    light = np.array([-0.4, -0.6, -0.7]) / np.linalg.norm([-0.4, -0.6, -0.7])
    shade = 0.3 + 0.7 * np.abs(n_cam @ light)
    order = np.argsort(-cam[:, 2])[np.flatnonzero(ok[np.argsort(-cam[:, 2])])]  # far first: near ones win
    image = np.full((ss, ss, 3), 255.0)
    image[row[order], col[order]] = shade[order, None] * np.array([150.0, 170.0, 205.0])
    return Image.fromarray(image.astype(np.uint8))


def contact_sheet(root: str | Path, out_png: str | Path, *, per_category: int = 8, split: str | None = None,
                  tile: int = 137, view: int = 0, canonical: bool = False) -> Path:
    """Write a PNG grid: one row per category (labelled), ``per_category`` renders (``view``, 000 by default).

    ``canonical``: draw each model's surface points from the canonical viewpoint instead.
    """
    root = Path(root)
    if per_category < 1:
        raise InputError(f"--per-category must be at least 1, got {per_category}")
    if split is not None and split not in SPLITS:
        raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not 0 <= view <= 999:
        raise InputError(f"view must be in 0..999, got {view}")
    tile = max(16, min(int(tile), MAX_TILE))
    meta = read_metadata(root)
    rows: list[tuple[str, list[Image.Image]]] = []
    for synset in sorted(meta):
        tiles = []
        for model in _models(root, synset, split):
            model_dir = root / synset / model
            im = canonical_tile(model_dir / POINTCLOUD_FILE, tile) if canonical else \
                _tile(model_dir / IMG_DIR / view_name(view), tile)
            if im is not None:
                tiles.append(im)
            if len(tiles) == per_category:
                break
        if tiles:
            rows.append((f"{short_name(meta[synset])}\n{synset}", tiles))
    if not rows:
        what = POINTCLOUD_FILE if canonical else f"{IMG_DIR}/{view_name(view)}"
        raise DatasetError(f"no rendered models found ({what})", path=root)
    sheet = Image.new("RGB", (LABEL_WIDTH + per_category * tile, len(rows) * tile), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, tiles) in enumerate(rows):
        draw.multiline_text((6, r * tile + tile // 2 - 10), label, fill=(0, 0, 0))
        for c, im in enumerate(tiles):
            sheet.paste(im, (LABEL_WIDTH + c * tile, r * tile))
        draw.line([(0, r * tile), (sheet.width, r * tile)], fill=(225, 225, 225))
    out = Path(out_png)
    with atomic_path(out, suffix=".png") as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return out
