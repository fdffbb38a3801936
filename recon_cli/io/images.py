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

Preprocessing (:func:`prepare_image`, :func:`preprocess`)
    0. Images under MIN_SIDE pixels on a side, and blank (single-colour)
       photos, are refused: there is nothing to reconstruct.
    1. The object mask, in order: a user's mask (``--mask``, :func:`load_mask`:
       object = non-zero, the photo's size); the alpha channel of an RGBA
       image with real transparency; otherwise segmentation of the opaque
       photo (:mod:`recon_cli.io.segment`: ``border`` for plain backdrops,
       ``grabcut`` for cluttered scenes, ``auto`` picks; ``none`` uses the
       whole photo). When segmentation finds no confident object (almost
       nothing, nearly the whole frame, or the image border) the photo is
       refused with a message suggesting ``--mask``: the whole photo is never
       used silently.
    2. Framing (:func:`frame_object`, shared with the photo-like training
       images of :mod:`recon_cli.data.photos`): the object is composited onto
       white and the square of side ``longest bbox side / FRAME_FILL``
       centred on the mask's bounding box is cropped (white beyond the photo),
       so the object fills the frame as in the training renders.
    3. The square is resized to the network's image size (Lanczos, antialiased).
    With ``--segment none`` the whole photo is padded to a white square and
    resized, unframed.
"""

from __future__ import annotations

import re
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
#: rifles 0.41, chairs 0.90). Re-measured after the canonical frame moved to
#: front +x (13 categories x 4 shapes x 6 views, uncompressed renders): median
#: 0.715, mean 0.704, 10th-90th percentile 0.54-0.85. Rounded to 0.72.
FRAME_FILL: float = 0.72

#: Default cap on the pixel count of an input image (checked before decoding).
MAX_PIXELS: int = 40_000_000

#: Longer side of the working copy used for background removal and framing.
WORK_SIZE: int = 1024

#: Images whose alpha channel is at least this everywhere count as opaque.
OPAQUE_ALPHA: int = 250

#: Smallest accepted image side in pixels (a smaller image holds no usable object).
MIN_SIDE: int = 16

_BLANK_LEVELS = 8  # a photo whose 0.1-99.9 percentile spread is at most this (8-bit levels) is blank


@dataclass
class LoadedImage:
    """An image as loaded: 8-bit RGB or RGBA, EXIF orientation applied."""

    image: Image.Image
    warnings: list[str] = field(default_factory=list)
    #: (width, height) of the full-resolution image after EXIF orientation (``image`` may be a
    #: reduced JPEG draft); masks given or saved for the photo use this pixel grid.
    full_size: tuple[int, int] | None = None


@dataclass
class PreparedImage:
    """The network input made from one photo."""

    tensor: torch.Tensor  # (3, S, S) float32 in [0, 1], on white
    image: Image.Image  # the same as an RGB PIL image (what --save-input writes)
    mask: np.ndarray | None  # (H, W) float32 soft alpha on the working copy, None when unmasked
    method: str  # "mask" (the user's), "alpha", "border", "grabcut" or "none"
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
    im = _open(path, max_pixels)
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
        turned = image.size != im.size  # EXIF orientation swapped the axes
        image = to_8bit(image)
    return LoadedImage(image, notes, (height, width) if turned else (width, height))


def _open(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own bomb check fires above ~89 Mpx, before ours can: report it as ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise InputError(f"image too large: {size} (limit {max_pixels:,})", path=path) from None
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


# --------------------------------------------------------------------------- masks


def remove_background(rgb: np.ndarray) -> np.ndarray | None:
    """Soft object mask (H, W) float32 in [0, 1] of an opaque photo (H, W, 3) uint8 by the border model.

    Returns ``None`` when no clear object stands out from the background (see
    :mod:`recon_cli.io.segment`, method ``border``).
    """
    from recon_cli.io.segment import _lab, border_fit, border_mask, check_mask

    if min(rgb.shape[:2]) < 8:
        return None
    alpha = border_mask(border_fit(_lab(rgb)))
    if alpha is None:
        return None
    try:
        check_mask(alpha > 0.5)
    except InputError:
        return None
    return alpha


def load_mask(path: str | Path, size: tuple[int, int], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A user's mask file as a boolean array (H, W): object = non-zero in any channel.

    ``size`` is the photo's (width, height); the mask must match it. An alpha
    channel with transparency counts as the mask's alpha (transparent = background).
    """
    image = load_image(path, max_pixels=max_pixels)
    if image.size != tuple(size):
        raise InputError(
            f"mask is {image.width}x{image.height} but the photo is {size[0]}x{size[1]}; "
            "the mask must have the photo's size", path=path)
    arr = np.asarray(image)
    mask = (arr[..., :3] > 0).any(axis=-1)
    if image.mode == "RGBA" and arr[..., 3].min() < OPAQUE_ALPHA:
        mask &= arr[..., 3] > 127
    if not mask.any():
        raise InputError("mask is empty (all zero): nothing is marked as the object", path=path)
    return mask


def mask_image(mask: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """A soft mask (H, W) in [0, 1] as an 8-bit grey image, resized (bilinear) to ``size`` = (width, height)."""
    image = Image.fromarray(np.clip(np.rint(np.asarray(mask, np.float32) * 255.0), 0, 255).astype(np.uint8), "L")
    if size is not None and image.size != tuple(size):
        image = image.resize(tuple(size), Image.Resampling.BILINEAR)
    return image


def _is_blank(rgb: np.ndarray) -> bool:
    """True when (nearly) every pixel has the same colour (JPEG noise and a few stray pixels aside)."""
    small = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256)].reshape(-1, 3)
    lo, hi = np.percentile(small, [0.1, 99.9], axis=0)
    return bool((hi - lo).max() <= _BLANK_LEVELS)


# --------------------------------------------------------------------------- framing


def prepare_image(
    image: Image.Image, *, size: int = 224, segment: str = "auto", mask: np.ndarray | None = None,
    remove_bg: bool = True, fill: float = FRAME_FILL,
) -> PreparedImage:
    """Mask, frame like the training renders, composite onto white, resize to ``size``.

    The mask is, in order: ``mask`` (a user's mask, any array the image's
    size or proportional to it; object = True / > 0.5), the image's alpha
    channel when it has real transparency, else the result of
    :func:`recon_cli.io.segment.segment` with ``segment`` (``"none"``, or
    ``remove_bg=False``: no mask, the whole image padded to a square).
    Raises :class:`InputError` (without a path) for images too small or blank,
    and when segmentation finds no confident object (the message suggests
    ``--mask``).
    """
    import torch

    if not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be in (0, 1], got {fill}")
    image = to_8bit(image)
    if min(image.size) < MIN_SIDE:
        raise InputError(f"image too small ({image.width}x{image.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} needed)")
    work = _working_copy(image)
    rgb = np.asarray(work.convert("RGB"))  # (H, W, 3) uint8
    notes: list[str] = []
    alpha, method = _object_mask(work, rgb, segment=segment if remove_bg else "none", mask=mask)
    if alpha is None:
        framed = _pad_square(Image.fromarray(rgb))
        out = framed.resize((size, size), Image.Resampling.LANCZOS) if framed.size != (size, size) else framed
    else:
        out = frame_object(rgb, alpha, size=size, fill=fill)
    tensor = torch.from_numpy(np.asarray(out, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return PreparedImage(tensor, out, alpha, method, notes)


def preprocess(image: Image.Image, *, size: int = 224, segment: str = "auto") -> tuple[torch.Tensor, Image.Image]:
    """(3, size, size) tensor in [0, 1] on white, framed like the training renders, and the same image."""
    prepared = prepare_image(image, size=size, segment=segment)
    return prepared.tensor, prepared.image


def _working_copy(image: Image.Image) -> Image.Image:
    if max(image.size) <= WORK_SIZE:
        return image
    scale = WORK_SIZE / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _object_mask(
    work: Image.Image, rgb: np.ndarray, *, segment: str, mask: np.ndarray | None
) -> tuple[np.ndarray | None, str]:
    """Soft mask on the working copy and where it came from ("mask", "alpha", "border", "grabcut", "none")."""
    from recon_cli.io.segment import MAX_COVERAGE, MIN_COVERAGE, SEGMENT_METHODS
    from recon_cli.io.segment import segment as run_segmentation

    if segment not in SEGMENT_METHODS:
        raise InputError(f"unknown segmentation method {segment!r}; valid: {', '.join(SEGMENT_METHODS)}")
    if mask is not None:
        user = np.asarray(mask, dtype=np.float32)
        if user.shape != rgb.shape[:2]:
            user = np.asarray(Image.fromarray(user).resize(work.size, Image.Resampling.BILINEAR))
        user = (user > 0.5).astype(np.float32)
        if not user.any():
            raise InputError("the mask marks no object pixels at the working resolution")
        return user, "mask"
    if work.mode == "RGBA":
        alpha = np.asarray(work.getchannel("A"))
        if alpha.min() < OPAQUE_ALPHA:
            coverage = float((alpha > 127).mean())
            if coverage == 0.0:
                raise InputError("the image is fully transparent")
            if coverage < MIN_COVERAGE:
                raise InputError(f"the image is almost fully transparent: its alpha keeps {coverage:.2%} of it")
            if coverage <= MAX_COVERAGE:
                return alpha.astype(np.float32) / 255.0, "alpha"
    if _is_blank(rgb):
        raise InputError("the image is blank (a single colour): there is no object to reconstruct")
    if segment == "none":
        return None, "none"
    try:
        result = run_segmentation(rgb, segment)
    except InputError as exc:
        raise InputError(f"{exc.message}; give the object's mask with --mask FILE "
                         "(or --segment none to use the whole photo)") from exc
    return result.alpha, result.method


def frame_object(rgb: np.ndarray, alpha: np.ndarray, *, size: int, fill: float = FRAME_FILL,
                 shift: tuple[float, float] = (0.0, 0.0), zoom: float = 1.0) -> Image.Image:
    """Frame an object like the training renders: the network input as an RGB image (size x size).

    ``rgb`` (H, W, 3) uint8 and its soft mask ``alpha`` (H, W) in [0, 1]: the
    object is composited onto white, the square of side ``longest bbox side /
    (fill * zoom)`` centred on the mask's bounding box (moved by ``shift``, in
    fractions of that side) is cropped (white beyond the photo) and resized to
    ``size`` with antialiasing (Lanczos). Inference uses ``shift=(0, 0), zoom=1``;
    training augmentation (:mod:`recon_cli.data.photos`) jitters them.
    """
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:  # only faint alpha: frame whatever is visible
        ys, xs = np.nonzero(alpha > 0.0)
    if len(xs) == 0:
        raise InputError("the object mask is empty")
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(1, int(np.ceil(max(x1 - x0, y1 - y0) / (fill * zoom))))
    left = int(round((x0 + x1) / 2 - side / 2 + shift[0] * side))
    top = int(round((y0 + y1) / 2 - side / 2 + shift[1] * side))
    h, w = alpha.shape
    cx0, cy0, cx1, cy1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    if cx1 > cx0 and cy1 > cy0:
        a = np.asarray(alpha[cy0:cy1, cx0:cx1], np.float32)[..., None]  # (h, w, 1)
        comp = rgb[cy0:cy1, cx0:cx1].astype(np.float32) * a + 255.0 * (1.0 - a)
        canvas.paste(Image.fromarray(np.clip(np.rint(comp), 0, 255).astype(np.uint8)), (cx0 - left, cy0 - top))
    return canvas.resize((size, size), Image.Resampling.LANCZOS) if side != size else canvas


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
