"""Contact sheet of a dataset: one row of renders (view 000) per category."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from recon_cli.data.layout import IMG_DIR, SPLITS, read_metadata, read_split, short_name, view_name
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


def contact_sheet(root: str | Path, out_png: str | Path, *, per_category: int = 8, split: str | None = None,
                  tile: int = 137, view: int = 0) -> Path:
    """Write a PNG grid: one row per category (labelled), ``per_category`` renders (``view``, 000 by default)."""
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
            im = _tile(root / synset / model / IMG_DIR / view_name(view), tile)
            if im is not None:
                tiles.append(im)
            if len(tiles) == per_category:
                break
        if tiles:
            rows.append((f"{short_name(meta[synset])}\n{synset}", tiles))
    if not rows:
        raise DatasetError(f"no rendered models found ({IMG_DIR}/{view_name(view)})", path=root)
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
