"""Contact sheet of photo preprocessing: photo | mask used | framed network input, one row per photo.

Usage: python examples/make_photo_sheet.py [-o examples/photo_masks.png] [--segment auto]
                                           [--photo-set DIR --photo-set-count 4]

Rows: the repository's example images (examples/*.png, *.jpg), real photos
shipped with scikit-image (coffee: CC0, Rachel Michetti; chelsea: CC0, Stefan
van der Walt; rocket: public domain, NASA), and a few images of a photo-like
test set (`recon data photos`) with their true mask outlined in green. A photo
that is refused shows the error line instead of a mask.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
CELL = 200


def _fit(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    image.thumbnail((CELL - 8, CELL - 24), Image.Resampling.LANCZOS)
    return image


def _row(name: str, rgb: np.ndarray, segment: str, truth: np.ndarray | None) -> Image.Image:
    from recon_cli.errors import ReconError
    from recon_cli.io.images import prepare_image

    row = Image.new("RGB", (3 * CELL, CELL), (255, 255, 255))
    draw = ImageDraw.Draw(row)
    row.paste(_fit(Image.fromarray(rgb)), (4, 20))
    try:
        prepared = prepare_image(Image.fromarray(rgb), size=224, segment=segment)
    except ReconError as exc:
        draw.text((4, 4), name, fill=(0, 0, 0))
        words, line, y = str(exc).split(), "", 24
        for word in words:
            if len(line) + len(word) > 30:
                draw.text((CELL + 4, y), line, fill=(200, 0, 0))
                line, y = "", y + 12
            line += word + " "
        draw.text((CELL + 4, y), line, fill=(200, 0, 0))
        return row
    alpha = prepared.mask if prepared.mask is not None else np.ones(rgb.shape[:2], np.float32)
    alpha = np.asarray(Image.fromarray(alpha).resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.BILINEAR))
    shown = (rgb * (0.25 + 0.75 * alpha[..., None])).astype(np.uint8)  # background dimmed
    overlay = Image.fromarray(shown)
    if truth is not None:
        from scipy import ndimage

        edge = truth & ~ndimage.binary_erosion(truth, iterations=2)
        arr = np.asarray(overlay).copy()
        arr[edge] = (0, 220, 0)
        overlay = Image.fromarray(arr)
        iou = float(((alpha > 0.5) & truth).sum() / max(((alpha > 0.5) | truth).sum(), 1))
        name += f"  IoU {iou:.2f}"
    row.paste(_fit(overlay), (CELL + 4, 20))
    row.paste(_fit(prepared.image), (2 * CELL + 4, 20))
    draw.text((4, 4), name, fill=(0, 0, 0))
    draw.text((CELL + 4, 4), f"mask: {prepared.method}", fill=(0, 0, 0))
    draw.text((2 * CELL + 4, 4), "network input", fill=(0, 0, 0))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=HERE / "photo_masks.png")
    parser.add_argument("--segment", default="auto")
    parser.add_argument("--photo-set", type=Path, default=None)
    parser.add_argument("--photo-set-count", type=int, default=4)
    args = parser.parse_args()

    import skimage.data

    rows = []
    for path in sorted(HERE.glob("*.png")) + sorted(HERE.glob("*.jpg")):
        if path.name.startswith("photo_masks"):
            continue
        rows.append(_row(path.name, np.asarray(Image.open(path).convert("RGB")), args.segment, None))
    for name in ("coffee", "chelsea", "rocket"):
        rows.append(_row(f"skimage {name}", getattr(skimage.data, name)(), args.segment, None))
    if args.photo_set is not None:
        entries = json.loads((args.photo_set / "index.json").read_text())["images"]
        step = max(1, len(entries) // args.photo_set_count)
        for entry in entries[::step][: args.photo_set_count]:
            rgb = np.asarray(Image.open(args.photo_set / entry["image"]).convert("RGB"))
            truth = np.asarray(Image.open(args.photo_set / entry["mask"])) > 127
            rows.append(_row(f"{entry['family']} {entry['model'][6:]}", rgb, args.segment, truth))
    cols = 2
    sheet = Image.new("RGB", (cols * 3 * CELL, CELL * ((len(rows) + cols - 1) // cols)), (255, 255, 255))
    for i, row in enumerate(rows):
        sheet.paste(row, ((i % cols) * 3 * CELL, (i // cols) * CELL))
    sheet.save(args.out, optimize=True)
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
