"""Photo-like images of meshes (domain randomisation) with true masks, for training and for testing segmentation.

One sample (:func:`photo_like`): the mesh (normalised: bbox centre at the
origin, longest side 1) is ray cast by :mod:`recon_cli.data.render` with a
random key-light direction, intensities and colour jitter, from a camera with
jittered elevation (-5..45 degrees), field of view and distance, and an
off-centre principal point (crop jitter); the true soft mask comes from a
second, shading-free ray cast with 2x2 rays per pixel. The object is tinted by
a random light colour, composited (premultiplied, so antialiased edges stay
exact) over a background with an optional soft contact shadow, and the photo
gets Gaussian blur, sensor noise and JPEG compression. A share of samples
(``plain_share``) keep a plain near-white backdrop, like the training renders.

Backgrounds (:func:`background`) are procedural families drawn per sample:
smooth gradients, fractal noise (stone, plaster), checkerboard tiles, wood-like
warped stripes, clutter (overlapping shapes, partly out of focus), a room (wall
over a textured floor with a horizon), marble (veined noise), and images from
a folder of textures when given. Held-out split: the families in
:data:`HELD_OUT_FAMILIES` are never drawn for training, and test samples use a
disjoint seed stream, so a test set never shares a background with training.

Everything is deterministic per seed. :func:`network_input` frames a sample for
the network with :func:`recon_cli.io.images.frame_object` (the inference code
path), optionally with framing jitter for augmentation.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageFilter

if TYPE_CHECKING:
    import trimesh

#: Background families drawn for training.
TRAIN_FAMILIES: tuple[str, ...] = ("gradient", "noise", "tiles", "wood", "clutter")
#: Families only ever drawn for test sets (never seen in training).
HELD_OUT_FAMILIES: tuple[str, ...] = ("room", "marble")
#: Every family; ``texture`` needs a textures folder.
FAMILIES: tuple[str, ...] = TRAIN_FAMILIES + HELD_OUT_FAMILIES + ("texture",)
#: Family name of the plain near-white samples.
PLAIN = "plain"

_SPLIT_SALT = {"train": 0x7A11, "test": 0x7E57}


@dataclass(frozen=True)
class PhotoOptions:
    """Ranges of the randomisation (each drawn uniformly per sample)."""

    size: int = 256                                # longer side of the photo in pixels
    aspects: tuple[float, ...] = (1.0, 4 / 3, 3 / 4)  # width / height choices
    plain_share: float = 0.15                      # share of plain near-white backdrops
    elevation_deg: tuple[float, float] = (-5.0, 45.0)
    fov_deg: tuple[float, float] = (30.0, 60.0)    # horizontal field of view of the longer side
    object_fill: tuple[float, float] = (0.4, 0.95)  # object's bounding sphere diameter / image side
    offset: float = 0.1                            # principal point shift, fraction of the side
    shadow_share: float = 0.5
    blur_sigma: tuple[float, float] = (0.0, 1.2)
    noise_sigma: tuple[float, float] = (0.0, 6.0)
    jpeg_quality: tuple[int, int] = (40, 95)
    ambient: tuple[float, float] = (0.2, 0.45)     # share of the object's colour lit from everywhere
    key_light: tuple[float, float] = (0.45, 0.8)   # strength of the directional key light


@dataclass
class PhotoSample:
    """One photo-like image and its truth."""

    photo: np.ndarray   # (H, W, 3) uint8, after blur, noise and JPEG
    alpha: np.ndarray   # (H, W) float32 true soft mask (coverage of 2x2 rays)
    K: np.ndarray       # (3, 3) camera intrinsics in pixels of the photo
    Rt: np.ndarray      # (3, 4) world-to-camera [R|t]
    family: str         # background family ("plain" for near-white)
    seed: int

    @property
    def mask(self) -> np.ndarray:
        """Boolean true mask (alpha > 0.5)."""
        return self.alpha > 0.5


# --------------------------------------------------------------------------- the sample


def sample_rng(seed: int, index: int, split: str = "train") -> np.random.Generator:
    """The generator of sample ``index``: disjoint streams for the train and test splits."""
    if split not in _SPLIT_SALT:
        raise ValueError(f"split must be train or test, got {split!r}")
    return np.random.default_rng([int(seed), int(index), _SPLIT_SALT[split]])


def photo_like(mesh: trimesh.Trimesh, rng: np.random.Generator, *, split: str = "train",
               options: PhotoOptions = PhotoOptions(), textures: list[Path] | None = None,
               family: str | None = None, seed: int = 0) -> PhotoSample:
    """A photo-like image of ``mesh`` (any scale; normalised here) and its true mask."""
    from recon_cli.data.render import RenderOptions, look_at, render_image

    from recon_cli.data.build import normalize_mesh

    mesh = normalize_mesh(mesh)[0]
    aspect = float(rng.choice(options.aspects))
    width, height = (options.size, round(options.size / aspect)) if aspect >= 1 else \
        (round(options.size * aspect), options.size)
    side = max(width, height)
    fov = np.radians(rng.uniform(*options.fov_deg))
    focal = side / 2.0 / np.tan(fov / 2.0)
    fill = rng.uniform(*options.object_fill)
    radius = float(np.linalg.norm(mesh.extents)) / 2.0  # bounding sphere of the normalised mesh
    distance = radius / np.sin(np.arctan(fill * np.tan(fov / 2.0)))  # the sphere spans ``fill`` of the side
    shift = rng.uniform(-options.offset, options.offset, 2) * side
    K = np.array([[focal, 0.0, side / 2.0 + shift[0]], [0.0, focal, side / 2.0 + shift[1]], [0.0, 0.0, 1.0]])
    Rt = look_at(rng.uniform(0.0, 360.0), rng.uniform(*options.elevation_deg), distance)
    render = RenderOptions(size=side, randomize=True, background=(0, 0, 0),
                           ambient=rng.uniform(*options.ambient), key_light=rng.uniform(*options.key_light))
    shaded = render_image(mesh, K, Rt, size=side, options=render, rng=rng).astype(np.float32) / 255.0
    alpha = coverage(mesh, K, Rt, side)
    top, left = (side - height) // 2, (side - width) // 2
    shaded, alpha = shaded[top:top + height, left:left + width], alpha[top:top + height, left:left + width]
    K = K.copy()
    K[0, 2] -= left
    K[1, 2] -= top
    premult = _premultiplied(shaded, alpha) * _light_colour(rng)
    if family is None:
        family = _draw_family(rng, split, options, textures)
    bg = background(family, rng, height, width, textures=textures).astype(np.float32) / 255.0
    if family != PLAIN and rng.uniform() < options.shadow_share:
        bg = _contact_shadow(bg, alpha, rng)
    photo = premult + (1.0 - alpha[..., None]) * bg
    photo = _camera_effects(photo, rng, options)
    return PhotoSample(photo, alpha.astype(np.float32), K, Rt, family, seed)


def network_input(sample: PhotoSample, *, size: int = 224, rng: np.random.Generator | None = None,
                  alpha: np.ndarray | None = None) -> Image.Image:
    """The network input made from a sample exactly as at inference (``frame_object``).

    ``alpha``: the mask to frame with (default the true one; pass an estimated
    mask to train on segmentation errors). With ``rng``, the framing is
    jittered (shift up to 4% of the side, zoom 0.9-1.1) for augmentation.
    """
    from recon_cli.io.images import frame_object

    shift, zoom = (0.0, 0.0), 1.0
    if rng is not None:
        shift = tuple(rng.uniform(-0.04, 0.04, 2))
        zoom = float(rng.uniform(0.9, 1.1))
    return frame_object(sample.photo, sample.alpha if alpha is None else alpha, size=size, shift=shift, zoom=zoom)


def coverage(mesh: trimesh.Trimesh, K: np.ndarray, Rt: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 share of 2x2 rays per pixel that hit ``mesh`` (the true soft mask)."""
    R, t = Rt[:, :3], Rt[:, 3]
    corners = np.array([[x, y, z] for x in mesh.bounds[:, 0] for y in mesh.bounds[:, 1] for z in mesh.bounds[:, 2]])
    cam = corners @ R.T + t
    out = np.zeros((size, size), np.float32)
    if (cam[:, 2] <= 1e-6).any():
        r0, r1, c0, c1 = 0, size, 0, size
    else:
        uv = (cam @ K.T)[:, :2] / (cam @ K.T)[:, 2:3]
        c0, r0 = np.maximum(np.floor(uv.min(axis=0)).astype(int) - 1, 0)
        c1, r1 = np.minimum(np.ceil(uv.max(axis=0)).astype(int) + 1, size)
        if r1 <= r0 or c1 <= c0:
            return out
    rows, cols = np.mgrid[r0:r1, c0:c1]
    sub = np.array([0.25, 0.75])
    u = (cols[..., None, None] + sub[None, None, None, :]).repeat(2, axis=2)  # (h, w, 2, 2)
    v = (rows[..., None, None] + sub[None, None, :, None]).repeat(2, axis=3)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)  # (N, 3)
    dirs = pix @ np.linalg.inv(K).T @ R  # camera rays to world (R^T d per row)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = np.broadcast_to(-R.T @ t, dirs.shape)
    hit = mesh.ray.intersects_any(np.ascontiguousarray(origins, np.float64), dirs)
    out[r0:r1, c0:c1] = hit.reshape(r1 - r0, c1 - c0, 4).mean(axis=-1)
    return out


def _premultiplied(shaded: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Object colour x alpha from a render whose background is uniform (read where alpha is 0)."""
    empty = alpha <= 0.0
    bg = np.median(shaded[empty], axis=0) if empty.any() else np.zeros(3, np.float32)
    return np.clip(shaded - (1.0 - alpha[..., None]) * bg, 0.0, None) * (alpha[..., None] > 0)


def _light_colour(rng: np.random.Generator) -> np.ndarray:
    """Colour of the light times exposure: warm to cool white, sometimes tinted."""
    warm = rng.uniform(-1.0, 1.0)
    colour = np.array([1.0 + 0.12 * warm, 1.0, 1.0 - 0.15 * warm]) * rng.uniform(0.8, 1.25)
    if rng.uniform() < 0.2:
        colour = colour * rng.uniform(0.8, 1.1, 3)
    return colour.astype(np.float32)


def _draw_family(rng: np.random.Generator, split: str, options: PhotoOptions, textures: list[Path] | None) -> str:
    if rng.uniform() < options.plain_share:
        return PLAIN
    names = list(TRAIN_FAMILIES if split == "train" else TRAIN_FAMILIES + HELD_OUT_FAMILIES)
    if textures:
        names.append("texture")
    return str(rng.choice(names))


def _contact_shadow(bg: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darken the background under and beside the object with a blurred, shifted copy of its mask."""
    from scipy import ndimage

    h, w = alpha.shape
    shift = (rng.uniform(0.02, 0.08) * h, rng.uniform(-0.08, 0.08) * w)
    shadow = ndimage.shift(alpha, shift, order=1, mode="constant")
    shadow = ndimage.gaussian_filter(shadow, sigma=rng.uniform(0.01, 0.04) * max(h, w))
    return bg * (1.0 - rng.uniform(0.2, 0.55) * np.clip(shadow, 0.0, 1.0))[..., None]


def _camera_effects(photo: np.ndarray, rng: np.random.Generator, options: PhotoOptions) -> np.ndarray:
    """Blur, sensor noise and JPEG compression of a float photo in [0, 1]; returns uint8."""
    image = Image.fromarray(np.clip(np.rint(photo * 255.0), 0, 255).astype(np.uint8))
    sigma = rng.uniform(*options.blur_sigma)
    if sigma > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(sigma))
    arr = np.asarray(image, np.float32) + rng.normal(0.0, rng.uniform(*options.noise_sigma), (image.height, image.width, 3))
    image = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=int(rng.integers(options.jpeg_quality[0], options.jpeg_quality[1] + 1)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


# --------------------------------------------------------------------------- backgrounds


def background(family: str, rng: np.random.Generator, height: int, width: int, *,
               textures: list[Path] | None = None) -> np.ndarray:
    """A background image (height, width, 3) uint8 of ``family`` (see the module docstring)."""
    makers = {PLAIN: _plain, "gradient": _gradient, "noise": _noise_bg, "tiles": _tiles, "wood": _wood,
              "clutter": _clutter, "room": _room, "marble": _marble}
    if family == "texture":
        if not textures:
            raise ValueError("the texture family needs a list of texture images")
        out = _texture(rng, height, width, textures)
    elif family in makers:
        out = makers[family](rng, height, width)
    else:
        raise ValueError(f"unknown background family {family!r}; valid: {', '.join((PLAIN, *FAMILIES))}")
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator, *, sat: float = 0.6) -> np.ndarray:
    """A random colour in [0, 1], biased towards the muted colours of real rooms."""
    grey = rng.uniform(0.15, 0.95)
    return np.clip(grey + rng.uniform(-sat, sat, 3) * rng.uniform(0.1, 1.0) * 0.5, 0.0, 1.0)


def _grid(height: int, width: int, rng: np.random.Generator, *, rotate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width)
    if rotate:
        a = rng.uniform(0, np.pi)
        xx, yy = xx * np.cos(a) - yy * np.sin(a), xx * np.sin(a) + yy * np.cos(a)
    return xx, yy


def _fractal(rng: np.random.Generator, height: int, width: int, *, octaves: int = 5, base: int = 4) -> np.ndarray:
    """Value noise in [0, 1]: bicubic upsampled random grids of doubling resolution."""
    out = np.zeros((height, width), np.float32)
    total = 0.0
    for o in range(octaves):
        n = base * 2**o
        grid = rng.uniform(0, 1, (n, n)).astype(np.float32)
        up = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC))
        amp = 0.55**o
        out += amp * up
        total += amp
    out /= total
    return (out - out.min()) / max(float(np.ptp(out)), 1e-6)


def _mix(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * (1.0 - t[..., None]) + b * t[..., None]


def _plain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    base = np.full(3, rng.uniform(0.93, 1.0)) + rng.normal(0, 0.01, 3)
    xx, yy = _grid(height, width, rng)
    return base * (1.0 - rng.uniform(0.0, 0.06) * xx[..., None])


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    xx, _ = _grid(height, width, rng)
    t = (xx - xx.min()) / max(float(np.ptp(xx)), 1e-6)
    out = _mix(t, _colour(rng), _colour(rng))
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    vignette = 1.0 - rng.uniform(0.0, 0.5) * ((xx - 0.5 * width / max(height, width)) ** 2 +
                                              (yy - 0.5 * height / max(height, width)) ** 2)
    return out * vignette[..., None]


def _noise_bg(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    t = _fractal(rng, height, width, octaves=int(rng.integers(3, 7)), base=int(rng.integers(2, 8)))
    return _mix(t, _colour(rng), _colour(rng))


def _tiles(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    xx, yy = _grid(height, width, rng)
    n = rng.uniform(3, 16)
    cell = (np.floor(xx * n) + np.floor(yy * n)) % 2
    a, b = _colour(rng), _colour(rng) if rng.uniform() < 0.6 else _colour(rng) * 0.8
    out = _mix(cell.astype(np.float32), a, b)
    grout = (np.minimum((xx * n) % 1, (yy * n) % 1) < rng.uniform(0.02, 0.08))
    out[grout] = _colour(rng, sat=0.1)
    return out * (0.9 + 0.2 * _fractal(rng, height, width, octaves=3))[..., None]


def _wood(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    xx, yy = _grid(height, width, rng)
    warp = _fractal(rng, height, width, octaves=4, base=3)
    rings = np.sin((yy * rng.uniform(20, 80) + 3.0 * warp) * np.pi) * 0.5 + 0.5
    planks = (np.floor(xx * rng.uniform(3, 9)) % 2) * rng.uniform(0.0, 0.2)
    base = np.array([rng.uniform(0.35, 0.75), 0.0, 0.0])
    base[1] = base[0] * rng.uniform(0.6, 0.8)
    base[2] = base[0] * rng.uniform(0.35, 0.55)
    return np.clip(base * (0.75 + 0.35 * rings - planks)[..., None], 0, 1)


def _clutter(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Overlapping rectangles and ellipses of random colours (shelves, furniture, objects), part blurred."""
    out = _gradient(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    for _ in range(int(rng.integers(6, 25))):
        cx, cy = rng.uniform(0, width / max(height, width)), rng.uniform(0, height / max(height, width))
        rx, ry = rng.uniform(0.03, 0.3, 2)
        shape = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1) if rng.uniform() < 0.5 else \
            ((np.abs(xx - cx) < rx) & (np.abs(yy - cy) < ry))
        shade = 0.85 + 0.3 * (yy - cy) / (2 * ry)
        out[shape] = np.clip(_colour(rng, sat=0.9) * shade[shape][:, None], 0, 1)
    sigma = rng.uniform(0.0, 4.0)
    if sigma > 0.5:
        from scipy import ndimage

        out = ndimage.gaussian_filter(out, sigma=(sigma, sigma, 0))
    return out


def _room(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A wall over a floor: the horizon somewhere in the upper half, a floor texture with perspective."""
    horizon = int(height * rng.uniform(0.2, 0.65))
    wall = _gradient(rng, height, width) * 0.5 + _colour(rng, sat=0.3) * 0.5
    floor_kind = rng.choice(["wood", "tiles", "noise"])
    floor = {"wood": _wood, "tiles": _tiles, "noise": _noise_bg}[str(floor_kind)](rng, height, width)
    rows = np.arange(height)
    depth = np.clip((rows - horizon) / max(height - horizon, 1), 0.05, 1.0)  # perspective squeeze near the horizon
    src = np.clip((depth ** 0.6) * (height - 1), 0, height - 1).astype(int)
    floor = floor[src] * (0.6 + 0.4 * depth)[:, None, None]
    out = wall.copy()
    out[horizon:] = floor[horizon:]
    out[max(0, horizon - 2):horizon + 2] *= 0.7  # skirting board line
    return out


def _marble(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    xx, yy = _grid(height, width, rng)
    turb = _fractal(rng, height, width, octaves=6, base=3)
    veins = np.abs(np.sin((xx * rng.uniform(4, 12) + 6.0 * turb) * np.pi)) ** rng.uniform(0.2, 0.6)
    return _mix(veins.astype(np.float32), _colour(rng, sat=0.3) * 0.5, _colour(rng, sat=0.2) * 0.3 + 0.7)


def _texture(rng: np.random.Generator, height: int, width: int, textures: list[Path]) -> np.ndarray:
    """A random crop of a random texture image, scaled to cover the frame (tiled if small)."""
    path = textures[int(rng.integers(len(textures)))]
    with Image.open(path) as im:
        tex = im.convert("RGB")
    scale = max(height, width) / min(tex.size) * rng.uniform(0.5, 1.5)
    tex = tex.resize((max(8, round(tex.width * scale)), max(8, round(tex.height * scale))), Image.Resampling.BILINEAR)
    reps = (int(np.ceil(height / tex.height)) + 1, int(np.ceil(width / tex.width)) + 1)
    arr = np.tile(np.asarray(tex, np.float32) / 255.0, (reps[0], reps[1], 1))
    r0 = int(rng.integers(0, arr.shape[0] - height + 1))
    c0 = int(rng.integers(0, arr.shape[1] - width + 1))
    return arr[r0:r0 + height, c0:c0 + width]


# --------------------------------------------------------------------------- photo-like sets of a dataset

MESH_SUFFIXES = (".obj", ".off", ".ply", ".stl", ".glb", ".gltf")
_SYNTH_ID = re.compile(r"^synth_([a-z]+)_(\d+)$")


def is_procedural_id(model_id: str) -> bool:
    """Whether a model id names a procedural model (``synth_<name>_<index>``, regenerable from its seed)."""
    return _SYNTH_ID.match(model_id) is not None


@dataclass
class PhotoSetReport:
    """What :func:`write_photo_set` wrote."""

    out: str
    images: int = 0
    models: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)  # "synset/model: problem"
    families: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {"out": self.out, "images": self.images, "models": self.models, "seconds": round(self.seconds, 2),
                "failed": self.failed, "families": self.families}


def list_textures(folder: str | Path) -> list[Path]:
    """Image files (png/jpg) under ``folder`` (recursive, sorted); DatasetError when there are none."""
    from recon_cli.errors import DatasetError

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise DatasetError("no .png/.jpg texture images found", path=folder)
    return files


def model_mesh(root: Path, synset: str, model_id: str, *, synth_seed: int | None = None,
               meshes: Path | None = None) -> trimesh.Trimesh:
    """The mesh of one dataset model: from ``meshes`` (a file named after the model id anywhere
    under it) or regenerated for procedural models (``synth_<name>_<i>``, ``synth_seed`` = the
    ``--seed`` of ``recon data synth``). The mesh's proportions are checked against the model's
    stored surface points, so a wrong seed or folder fails instead of giving wrong masks."""
    from recon_cli.data.layout import load_pointcloud
    from recon_cli.errors import DatasetError

    model_dir = root / synset / model_id
    if meshes is not None:
        found = sorted(p for p in Path(meshes).rglob(f"{model_id}.*") if p.suffix.lower() in MESH_SUFFIXES)
        if not found:
            raise DatasetError(f"no mesh file named {model_id}.* under {meshes}", path=model_dir)
        from recon_cli.io.mesh import load_mesh

        mesh = load_mesh(found[0])
    else:
        match = _SYNTH_ID.match(model_id)
        if match is None:
            raise DatasetError("not a procedural model id (synth_<name>_<index>): give its meshes with --meshes DIR",
                               path=model_dir)
        if synth_seed is None:
            raise DatasetError("procedural model: give --synth-seed (the --seed the dataset was made with)",
                               path=model_dir)
        from recon_cli.data.synth import generate
        from recon_cli.data.synth.dataset import model_seed

        mesh = generate(match.group(1), model_seed(synth_seed, synset, int(match.group(2))))
    points, _ = load_pointcloud(model_dir)
    stored = np.sort(np.ptp(points, axis=0))
    lo, hi = mesh.bounds
    mine = np.sort((hi - lo) / max(float((hi - lo).max()), 1e-9))
    if np.abs(stored - mine).max() > 0.03:
        raise DatasetError(f"the mesh's proportions {np.round(mine, 3).tolist()} do not match the stored surface "
                           f"points {np.round(stored, 3).tolist()} (wrong --synth-seed or --meshes?)", path=model_dir)
    return mesh


def write_photo_set(root: str | Path, out: str | Path, *, split: str = "test", per_model: int = 8, seed: int = 0,
                    synth_seed: int | None = None, meshes: Path | None = None, textures: list[Path] | None = None,
                    options: PhotoOptions = PhotoOptions(), categories: list[str] | None = None,
                    on_progress: Callable[[int, int, str], None] | None = None) -> PhotoSetReport:
    """Write ``per_model`` photo-like images of every model of ``split`` with their true masks.

    Layout: ``out/images/<synset>_<model>_<k>.png``, ``out/masks/<same>.png``
    (8-bit soft mask) and ``out/index.json`` (one entry per image: files,
    synset, model, background family, sample seed, K, [R|t]). Backgrounds use
    the test stream and families (held out from training) unless
    ``split == "train"``. A model that fails is reported and the rest go on.
    """
    from recon_cli.data.layout import read_metadata, read_split, resolve_categories
    from recon_cli.errors import InputError
    from recon_cli.io.atomic import atomic_path, atomic_write_text

    start = time.perf_counter()
    root, out = Path(root), Path(out)
    if per_model < 1:
        raise InputError(f"--per-model must be at least 1, got {per_model}")
    if split not in ("train", "val", "test"):
        raise InputError(f"--split must be train, val or test, got {split!r}")
    metadata = read_metadata(root)
    synsets = resolve_categories(metadata, categories)
    models = [(synset, m) for synset in synsets for m in read_split(root, synset, split)]
    if not models:
        raise InputError(f"the {split} split of {root} lists no models")
    stream = "train" if split == "train" else "test"
    report = PhotoSetReport(str(out))
    entries: list[dict[str, Any]] = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for n, (synset, model_id) in enumerate(models):
        try:
            mesh = model_mesh(root, synset, model_id, synth_seed=synth_seed, meshes=meshes)
        except Exception as exc:  # noqa: BLE001 - one bad model never stops the set
            report.failed.append(f"{synset}/{model_id}: {exc}".splitlines()[0])
            continue
        for k in range(per_model):
            index = n * per_model + k
            sample = photo_like(mesh, sample_rng(seed, index, stream), split=stream, options=options,
                                textures=textures, seed=index)
            name = f"{synset}_{model_id}_{k:02d}.png"
            with atomic_path(out / "images" / name) as tmp:
                Image.fromarray(sample.photo).save(tmp, format="PNG")
            with atomic_path(out / "masks" / name) as tmp:
                Image.fromarray(np.clip(np.rint(sample.alpha * 255), 0, 255).astype(np.uint8), "L").save(tmp, format="PNG")
            entries.append({"image": f"images/{name}", "mask": f"masks/{name}", "synset": synset, "model": model_id,
                            "family": sample.family, "seed": index, "K": np.round(sample.K, 4).tolist(),
                            "Rt": np.round(sample.Rt, 6).tolist()})
            report.families[sample.family] = report.families.get(sample.family, 0) + 1
        report.models += 1
        if on_progress is not None:
            on_progress(n + 1, len(models), model_id)
    report.images = len(entries)
    doc = {"root": str(root), "split": split, "seed": seed, "per_model": per_model, "stream": stream,
           "options": {k: v for k, v in vars(options).items()}, "images": entries}
    atomic_write_text(out / "index.json", json.dumps(doc, indent=1) + "\n")
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------- photo variants of dataset renders


def render_silhouette(points: np.ndarray, K: np.ndarray, Rt: np.ndarray, height: int, width: int,
                      render: np.ndarray | None = None) -> np.ndarray:
    """(height, width) bool silhouette of a model in one of its renders, from its surface samples.

    ``points`` (N, 3) are the model's pointcloud.npz samples in the model frame;
    ``K`` (3, 3) and ``Rt`` (3, 4) the render's camera (OpenCV, pixels). Every
    sample is projected and its pixel marked; a 3x3 closing fills the gaps
    between samples (100k samples leave few at 137 px) and enclosed
    background pieces of at most 6 pixels are filled. With ``render`` (the
    view on white, (H, W, 3) uint8), pixels that are not white and lie within 2
    pixels of the projected samples are added (gaps left by sparse samples).
    """
    from scipy import ndimage

    cam = points @ Rt[:, :3].T + Rt[:, 3]
    front = cam[:, 2] > 1e-6
    uv = cam[front] @ K.T
    u = np.floor(uv[:, 0] / uv[:, 2]).astype(np.int64)
    v = np.floor(uv[:, 1] / uv[:, 2]).astype(np.int64)
    keep = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    mask = np.zeros((height, width), bool)
    mask[v[keep], u[keep]] = True
    out = ndimage.binary_closing(mask, structure=np.ones((3, 3), bool), iterations=1, border_value=0) | mask
    if render is not None:
        near = ndimage.binary_dilation(mask, iterations=2)
        out |= near & (np.asarray(render).min(axis=-1) < 240)
    labels, n = ndimage.label(~out)  # pinholes between samples: background pieces of at most 6 pixels
    if n:
        sizes = np.bincount(labels.ravel())
        small = sizes <= 6
        small[0] = False
        out |= small[labels]
    return out


def segmentation_error(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft mask like an imperfect segmentation of ``mask`` (bool): the border moved by -2..2
    pixels, sometimes a bite out of the object or a blob of background kept; edges softened."""
    from scipy import ndimage

    out = mask.copy()
    grow = int(rng.integers(-2, 3))
    if grow > 0:
        out = ndimage.binary_dilation(out, iterations=grow)
    elif grow < 0:
        eroded = ndimage.binary_erosion(out, iterations=-grow)
        out = eroded if eroded.sum() > 0.5 * out.sum() else out
    ys, xs = np.nonzero(mask)
    if len(xs):
        h, w = mask.shape
        yy, xx = np.mgrid[0:h, 0:w]
        extent = max(int(np.ptp(xs)), int(np.ptp(ys)), 1)
        for keep_value, share in ((False, 0.2), (True, 0.2)):  # a bite out, then a background blob in
            if rng.uniform() >= share:
                continue
            k = int(rng.integers(0, len(xs)))
            radius = rng.uniform(0.05, 0.15) * extent
            cy, cx = ys[k] + rng.normal(0, radius), xs[k] + rng.normal(0, radius)
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
            out = out | disk if keep_value else out & ~disk
        if out.sum() < 0.5 * mask.sum():
            out = mask.copy()
    return np.clip(ndimage.gaussian_filter(out.astype(np.float32), 0.6), 0.0, 1.0)


def photo_variant(render: Image.Image, silhouette: np.ndarray, rng: np.random.Generator, *, size: int = 224,
                  options: PhotoOptions = PhotoOptions()) -> Image.Image:
    """A dataset render (object on white) turned into a photo and back into a network input.

    The object (``silhouette``, bool, the render's pixel grid) is tinted by a random
    light colour and pasted over a training-family background (never the held-out
    ones) with an optional contact shadow, blur, noise and JPEG; then it is cut out
    again with an imperfect mask (:func:`segmentation_error`) and framed by
    :func:`recon_cli.io.images.frame_object` with framing jitter, exactly as the
    inference path frames a segmented photo. Deterministic for a given ``rng``.
    """
    from recon_cli.io.images import frame_object

    rgb = np.asarray(render.convert("RGB"), np.float32) / 255.0
    h, w = silhouette.shape
    alpha = silhouette.astype(np.float32)
    family = _draw_family(rng, "train", options, None)
    bg = background(family, rng, h, w).astype(np.float32) / 255.0
    if family != PLAIN and rng.uniform() < options.shadow_share:
        bg = _contact_shadow(bg, alpha, rng)
    photo = rgb * alpha[..., None] * _light_colour(rng) + (1.0 - alpha[..., None]) * bg
    photo = _camera_effects(photo, rng, options)
    soft = segmentation_error(silhouette, rng)
    shift = tuple(rng.uniform(-0.04, 0.04, 2))
    return frame_object(photo, soft, size=size, shift=shift, zoom=float(rng.uniform(0.9, 1.1)))
