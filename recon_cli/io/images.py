"""Image loading and photo preprocessing for reconstruction.

Loading (:func:`load_image`, :func:`read_image`)
    The pixel count is checked from the header *before* any pixel is decoded
    (``max_pixels``; PIL's decompression-bomb errors are reported the same way).
    Truncated or corrupt data, non-images and folders raise :class:`InputError`
    naming the file. EXIF orientation is applied. Every mode becomes 8-bit RGB
    or RGBA: grayscale and bilevel are expanded, 16-bit (``I;16*``) and 32-bit
    integer images are scaled to 8 bits (not clipped), float images are scaled
    from [0, 1] (or [0, 255]), CMYK and other colour spaces are converted,
    palettes with transparency become RGBA. Animated images (GIF, APNG, WebP,
    multi-page TIFF) use their first frame, with a warning.

Preprocessing (:func:`preprocess`, :func:`prepare_image`)
    1. The object mask: an RGBA image with real transparency uses its alpha;
       an opaque photo gets its background removed (:func:`remove_background`,
       unless ``remove_bg=False``).
    2. The object's bounding box (mask > 0.5) is centred in a square white frame
       whose side is ``longest bbox side / FRAME_FILL``, so the object fills the
       frame as in the training renders; the photo is composited onto white
       with the (soft) mask.
    3. The frame is resized to the network's image size (Lanczos).
    Without a mask (``remove_bg=False`` on an opaque photo, or when background
    removal finds no clear object) the whole photo is padded to a white square
    and resized, unframed; the latter case adds a warning.

Background removal method (:func:`remove_background`), for objects on a plain
or uncluttered background (estimated on a copy at most MASK_SIZE pixels
wide, the soft mask then upsampled):
    1. Work in CIE Lab, lightly smoothed (Gaussian, sigma 0.5 px) against
       sensor noise. The background is modelled as a plane per Lab channel
       (``a + b*x + c*y``, so mild lighting gradients are absorbed), fitted by
       least squares to a band along the image border; border pixels far from
       the fit (parts of an object touching the border) are dropped and the
       plane refitted (three rounds, median + 3 robust SDs).
    2. Distance map: Euclidean distance in Lab (Delta E 1976) to the plane.
    3. Hysteresis threshold: the low threshold is the noise ceiling of the
       background (99th percentile of the kept border residuals x 1.5 + 2,
       at least 6 Delta E); the high threshold is Otsu's threshold of the
       distance map (at least 1.5 x low). Pixels above high seed the object,
       pixels above low that touch a seed join it.
    4. A 3x3 opening removes specks; connected components smaller than 10% of
       the largest are dropped; enclosed holes are filled
       (``scipy.ndimage.binary_fill_holes``) unless a hole is large (over 0.5%
       of the object) and background-coloured, so the opening of a chair back
       stays open.
    5. The mask is feathered by a Gaussian blur (sigma 0.8 px) into a soft alpha.
    Measured on renders of the procedural shapes pasted on random plain
    colours with noise (8 categories x 3 views): mean mask IoU 0.966, median
    0.988; thin parts (lamp stems, rifle barrels) are the weak spot.
    If the result is empty (under 0.2% of the pixels) or covers nearly the
    whole image (over 97%), there is no clear object: ``None`` is returned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from recon_cli.errors import InputError

if TYPE_CHECKING:
    import torch

#: Fraction of the square frame's side covered by the longer side of the
#: object's 2D bounding box in the training renders. Measured with
#: :func:`fill_fraction` on the default Choy-style renders (RenderOptions():
#: distance 1.6, focal 149.84/137) of procedural shapes, 13 categories x 2
#: shapes x 6 views: median 0.715 (mean 0.695, 10th-90th percentile 0.51-0.85;
#: rifles 0.41, chairs 0.90). Rounded to 0.72.
FRAME_FILL: float = 0.72

#: Default cap on the pixel count of an input image (checked before decoding).
MAX_PIXELS: int = 40_000_000

#: Longer side of the working copy used for background removal and framing.
WORK_SIZE: int = 1024

#: Longer side of the copy on which the background mask is estimated (then upsampled).
MASK_SIZE: int = 512

#: Images whose alpha channel is at least this everywhere count as opaque.
OPAQUE_ALPHA: int = 250

_BORDER_FRACTION = 0.03
_MIN_DELTA_E = 6.0
_FEATHER_SIGMA = 0.8
_SMOOTH_SIGMA = 0.5
_MIN_FOREGROUND = 0.002
_MAX_FOREGROUND = 0.97
_NO_OBJECT_WARNING = "background removal found no clear object; using the whole image"


@dataclass
class LoadedImage:
    """An image as loaded: 8-bit RGB or RGBA, EXIF orientation applied."""

    image: Image.Image
    warnings: list[str] = field(default_factory=list)


@dataclass
class PreparedImage:
    """The network input made from one photo."""

    tensor: torch.Tensor  # (3, S, S) float32 in [0, 1], on white
    image: Image.Image  # the same as an RGB PIL image (what --save-input writes)
    mask: np.ndarray | None  # (H, W) float32 soft alpha on the working copy, None when unmasked
    method: str  # "alpha", "background-removal" or "none"
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def load_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an 8-bit RGB or RGBA image; InputError naming the file on failure."""
    return read_image(path, max_pixels=max_pixels).image


def read_image(path: str | Path, *, max_pixels: int = MAX_PIXELS, draft: int | None = None) -> LoadedImage:
    """Like :func:`load_image`, also returning warnings (animated input, bad EXIF).

    ``draft``: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling, much
    faster) as long as both sides stay at least ``draft`` pixels.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not an image", path=path)
    if not path.exists():
        raise InputError("no such file", path=path)
    notes: list[str] = []
    im = _open(path)
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise InputError(
                f"image too large: {width}x{height} = {width * height:,} pixels (limit {max_pixels:,})", path=path
            )
        if width == 0 or height == 0:
            raise InputError("image has no pixels", path=path)
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
            notes.append(f"animated or multi-frame image ({im.n_frames} frames): using the first frame")
        if draft is not None and im.format == "JPEG":
            im.draft(None, (draft, draft))
        try:
            im.load()
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... for bad data
            raise InputError(f"truncated or corrupt image data ({_one_line(exc)})", path=path) from exc
        image = _apply_exif(im, notes)
        image = to_8bit(image)
    return LoadedImage(image, notes)


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"image too large (decompression bomb check: {_one_line(exc)})", path=path) from exc
    except UnidentifiedImageError as exc:
        raise InputError("not an image (unrecognised or unsupported format)", path=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read file ({_one_line(exc)})", path=path) from exc


def _apply_exif(im: Image.Image, notes: list[str]) -> Image.Image:
    try:
        out = ImageOps.exif_transpose(im)
    except Exception:  # malformed EXIF must not lose the image
        notes.append("unreadable EXIF orientation ignored")
        return im.copy()
    return out if out is not None else im.copy()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def to_8bit(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, or RGBA when the image carries transparency."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image if "transparency" not in image.info or mode == "RGBA" else image.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    if mode in ("P", "PA", "L", "1") and "transparency" in image.info:
        return image.convert("RGBA")
    if mode in ("PA", "LA", "La", "RGBa"):
        return image.convert("RGBA")
    return image.convert("RGB")


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16/32-bit integer or float single-channel array to uint8 (H, W)."""
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    if mode.startswith("I;16"):
        top = 65535.0
    elif mode == "F":
        top = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
    else:  # 32-bit integers: usually 8- or 16-bit data widened by the decoder
        peak = values.max(initial=0.0)
        top = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
    return np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- background


def remove_background(rgb: np.ndarray) -> np.ndarray | None:
    """Soft object mask (H, W) float32 in [0, 1] of an opaque photo (H, W, 3) uint8.

    Returns ``None`` when no clear object stands out from the background
    (method in the module docstring).
    """
    from scipy import ndimage
    from skimage.color import rgb2lab
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu

    h, w = rgb.shape[:2]
    if min(h, w) < 8:
        return None
    lab = ndimage.gaussian_filter(rgb2lab(rgb), sigma=(_SMOOTH_SIGMA, _SMOOTH_SIGMA, 0))  # (H, W, 3) float64
    dist, low = _background_distance(lab)
    high = max(float(threshold_otsu(dist)), 1.5 * low) if np.ptp(dist) > 0 else np.inf
    mask = apply_hysteresis_threshold(dist, low, high)
    mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
    mask = _keep_large_components(mask)
    mask = _fill_object_holes(mask, dist, low)
    fraction = float(mask.mean())
    if fraction < _MIN_FOREGROUND or fraction > _MAX_FOREGROUND:
        return None
    alpha = ndimage.gaussian_filter(mask.astype(np.float32), sigma=_FEATHER_SIGMA)
    return np.clip(alpha, 0.0, 1.0)


def _background_distance(lab: np.ndarray) -> tuple[np.ndarray, float]:
    """Distance map (H, W) to a plane fitted to the border colours, and the noise ceiling."""
    h, w = lab.shape[:2]
    band = max(2, round(_BORDER_FRACTION * min(h, w)))
    border = np.zeros((h, w), bool)
    border[:band] = border[-band:] = True
    border[:, :band] = border[:, -band:] = True
    ys, xs = np.nonzero(border)
    design = np.stack([np.ones(len(xs)), xs / w - 0.5, ys / h - 0.5], axis=1)  # (M, 3)
    colours = lab[border]  # (M, 3)
    keep = np.ones(len(xs), bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], colours[keep], rcond=None)  # (3, 3)
        resid = np.linalg.norm(colours - design @ coef, axis=1)
        med = np.median(resid[keep])
        mad = np.median(np.abs(resid[keep] - med)) * 1.4826
        keep = resid <= med + 3.0 * mad + 0.5
    yy, xx = np.mgrid[0:h, 0:w]
    plane = coef[0] + (xx / w - 0.5)[..., None] * coef[1] + (yy / h - 0.5)[..., None] * coef[2]  # (H, W, 3)
    dist = np.linalg.norm(lab - plane, axis=-1)
    low = max(_MIN_DELTA_E, float(np.percentile(resid[keep], 99)) * 1.5 + 2.0)
    return dist, low


def _keep_large_components(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    areas = np.bincount(labels.ravel())[1:]  # (n,)
    keep = np.flatnonzero(areas >= 0.1 * areas.max()) + 1
    return np.isin(labels, keep)


def _fill_object_holes(mask: np.ndarray, dist: np.ndarray, low: float) -> np.ndarray:
    from scipy import ndimage

    filled = ndimage.binary_fill_holes(mask)
    holes, n = ndimage.label(filled & ~mask)
    if n == 0:
        return filled
    object_area = max(int(mask.sum()), 1)
    index = np.arange(1, n + 1)
    areas = ndimage.sum_labels(np.ones_like(dist), holes, index)
    medians = ndimage.median(dist, holes, index)
    open_holes = index[(areas > 0.005 * object_area) & (np.asarray(medians) < low)]
    return filled & ~np.isin(holes, open_holes)


# --------------------------------------------------------------------------- framing


def prepare_image(
    image: Image.Image, *, size: int = 224, remove_bg: bool = True, fill: float = FRAME_FILL
) -> PreparedImage:
    """Mask, frame like the training renders, composite onto white, resize to ``size``."""
    import torch

    if not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    work = _working_copy(to_8bit(image))
    rgb = np.asarray(work.convert("RGB"))  # (H, W, 3) uint8
    notes: list[str] = []
    mask, method = _object_mask(work, rgb, remove_bg=remove_bg, notes=notes)
    if mask is None:
        framed = _pad_square(Image.fromarray(rgb))
    else:
        framed = _frame(rgb, mask, fill)
    out = framed.resize((size, size), Image.Resampling.LANCZOS) if framed.size != (size, size) else framed
    tensor = torch.from_numpy(np.asarray(out, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return PreparedImage(tensor, out, mask, method, notes)


def preprocess(image: Image.Image, *, size: int = 224, remove_bg: bool = True) -> tuple[torch.Tensor, Image.Image]:
    """(3, size, size) tensor in [0, 1] on white, framed like the training renders, and the same image."""
    prepared = prepare_image(image, size=size, remove_bg=remove_bg)
    return prepared.tensor, prepared.image


def _working_copy(image: Image.Image) -> Image.Image:
    if max(image.size) <= WORK_SIZE:
        return image
    scale = WORK_SIZE / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _object_mask(
    work: Image.Image, rgb: np.ndarray, *, remove_bg: bool, notes: list[str]
) -> tuple[np.ndarray | None, str]:
    if work.mode == "RGBA":
        alpha = np.asarray(work.getchannel("A"))
        if alpha.min() < OPAQUE_ALPHA:
            if not (alpha > 127).any():
                raise InputError("the image is fully transparent")
            return alpha.astype(np.float32) / 255.0, "alpha"
    if not remove_bg:
        return None, "none"
    mask = _estimate_mask(work.convert("RGB"))
    if mask is None:
        notes.append(_NO_OBJECT_WARNING)
        return None, "none"
    return mask, "background-removal"


def _estimate_mask(image: Image.Image) -> np.ndarray | None:
    """Background removal on a copy of at most MASK_SIZE pixels, upsampled to ``image``'s size."""
    if max(image.size) <= MASK_SIZE:
        return remove_background(np.asarray(image))
    scale = MASK_SIZE / max(image.size)
    small = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    alpha = remove_background(np.asarray(small))
    if alpha is None:
        return None
    big = Image.fromarray(alpha).resize(image.size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)


def _frame(rgb: np.ndarray, mask: np.ndarray, fill: float) -> Image.Image:
    """Composite onto white and centre the object's bbox in a square of side bbox/fill."""
    ys, xs = np.nonzero(mask > 0.5)
    if len(xs) == 0:  # only faint alpha: frame whatever is visible
        ys, xs = np.nonzero(mask > 0.0)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / fill)))
    alpha = mask[..., None]  # (H, W, 1)
    comp = rgb.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    offset = (round(side / 2 - (x0 + x1) / 2), round(side / 2 - (y0 + y1) / 2))
    canvas.paste(Image.fromarray(np.clip(np.rint(comp), 0, 255).astype(np.uint8)), offset)
    return canvas


def _pad_square(image: Image.Image) -> Image.Image:
    side = max(image.size)
    if image.width == image.height:
        return image
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def fill_fraction(image: np.ndarray, *, white: int = 250) -> float:
    """Longer side of the non-white bbox over the image side, for (H, W, 3) uint8 renders on white."""
    fg = (np.asarray(image) < white).any(axis=-1)
    if not fg.any():
        return 0.0
    ys, xs = np.nonzero(fg)
    return max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / max(fg.shape)
