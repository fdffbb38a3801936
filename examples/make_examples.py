"""Make the example images in examples/ and render reconstructions beside them.

    python examples/make_examples.py images [--seed 0]
    python examples/make_examples.py renders MESH_DIR

`images` renders held-out procedural models (test-split indices of `recon data synth --seed 0
--per-category 150`, the procedural part of the shipped weights' training data) at 256 px on white, like the
training renders, plus two photo-like images: a plain coloured backdrop with a lighting gradient,
sensor noise and JPEG compression, so that the background-removal path of `recon reconstruct` is
exercised. `renders` writes examples/reconstructions/<stem>.png: the input beside renders of
its stage-1 and final meshes from MESH_DIR (`recon reconstruct examples/*.png examples/*.jpg
--out-dir MESH_DIR --save-stages`), all with the same camera.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from recon_cli.data.build import normalize_mesh
from recon_cli.data.categories import NAMES
from recon_cli.data.render import RenderOptions, intrinsics, look_at, render_image
from recon_cli.data.synth.dataset import model_seed
from recon_cli.data.synth.generate import generate
from recon_cli.errors import ReconError
from recon_cli.io.mesh import load_mesh

HERE = Path(__file__).resolve().parent
SIZE = 256
AZIMUTH, ELEVATION = 35.0, 27.0

#: example name -> (category, index in the synth dataset); all indices are in the test split.
HELD_OUT = {
    "chair": ("chair", 3),
    "airplane": ("airplane", 8),
    "car": ("car", 17),
    "table": ("table", 2),
    "lamp": ("lamp", 12),
    "sofa": ("sofa", 9),
    "vessel": ("vessel", 3),
}
#: photo-like examples: name -> (category, index, backdrop RGB)
PHOTOS = {
    "photo_chair": ("chair", 5, (150, 162, 176)),
    "photo_car": ("car", 22, (196, 188, 170)),
}


def _camera(size: int) -> tuple[np.ndarray, np.ndarray]:
    options = RenderOptions()
    return intrinsics(size, options.focal), look_at(AZIMUTH, ELEVATION, options.distance)


def _held_out_mesh(category: str, index: int, seed: int):
    mesh = generate(category, model_seed(seed, NAMES[category], index))
    return normalize_mesh(mesh)[0]


def _photo_like(image: np.ndarray, backdrop: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Replace white with a lit backdrop, add a light gradient and sensor noise."""
    img = image.astype(np.float32)
    white = np.all(image >= 254, axis=-1, keepdims=True)
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = (1.08 - 0.25 * yy - 0.08 * xx)[..., None]                 # (H,W,1) top-left key light
    backdrop_img = np.asarray(backdrop, np.float32)[None, None] * light
    img = np.where(white, backdrop_img, img * (0.9 + 0.1 * light))
    img += rng.normal(0.0, 3.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(seed: int) -> None:
    K, Rt = _camera(SIZE)
    for name, (category, index) in HELD_OUT.items():
        mesh = _held_out_mesh(category, index, seed)
        Image.fromarray(render_image(mesh, K, Rt, size=SIZE)).save(HERE / f"{name}.png")
    rng = np.random.default_rng(seed)
    for name, (category, index, backdrop) in PHOTOS.items():
        mesh = _held_out_mesh(category, index, seed)
        photo = _photo_like(render_image(mesh, K, Rt, size=320), backdrop, rng)
        Image.fromarray(photo).save(HERE / f"{name}.jpg", quality=88)


def _mesh_tile(path: Path, K: np.ndarray, Rt: np.ndarray) -> Image.Image:
    try:
        mesh = load_mesh(path)
    except ReconError:  # no file, or an empty mesh: the reconstruction found no surface
        tile = Image.new("RGB", (SIZE, SIZE), "white")
        ImageDraw.Draw(tile).text((SIZE // 2 - 60, SIZE // 2), "empty reconstruction", fill=(120, 120, 120))
        return tile
    mesh.visual.face_colors = (178, 182, 190, 255)
    return Image.fromarray(render_image(mesh, K, Rt, size=SIZE))


def make_renders(mesh_dir: Path) -> None:
    """examples/reconstructions/<stem>.png: input | stage-1 (OccNet) mesh | final mesh (the default, blend)."""
    K, Rt = _camera(SIZE)
    out_dir = HERE / "reconstructions"
    out_dir.mkdir(exist_ok=True)
    strips = []
    for image_path in sorted([*HERE.glob("*.png"), *HERE.glob("*.jpg")]):
        stem = image_path.stem
        if not (mesh_dir / f"{stem}.obj").is_file():  # not an example input (e.g. the photo_masks.png sheet)
            continue
        tiles = [Image.open(image_path).convert("RGB").resize((SIZE, SIZE)),
                 _mesh_tile(mesh_dir / f"{stem}.stage1.obj", K, Rt),
                 _mesh_tile(mesh_dir / f"{stem}.obj", K, Rt)]
        strip = Image.new("RGB", (SIZE * len(tiles), SIZE + 18), "white")
        draw = ImageDraw.Draw(strip)
        for i, (tile, label) in enumerate(zip(tiles, ("input", "stage 1 (OccNet)", "final (blend)"))):
            strip.paste(tile, (i * SIZE, 18))
            draw.text((i * SIZE + 6, 3), label, fill=(60, 60, 60))
        strip.save(out_dir / f"{stem}.png")
        strips.append(strip)
    overview = Image.new("RGB", (strips[0].width, sum(s.height for s in strips)), "white")
    for i, strip in enumerate(strips):
        overview.paste(strip, (0, i * strip.height))
    overview.save(out_dir / "overview.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    images = sub.add_parser("images")
    images.add_argument("--seed", type=int, default=0)
    renders = sub.add_parser("renders")
    renders.add_argument("mesh_dir", type=Path)
    args = parser.parse_args()
    if args.cmd == "images":
        make_images(args.seed)
    else:
        make_renders(args.mesh_dir)


if __name__ == "__main__":
    main()
