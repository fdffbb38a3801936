"""Object masks of opaque photos: a border-colour model for plain backdrops, GrabCut for cluttered scenes.

Methods (:data:`SEGMENT_METHODS`, ``recon reconstruct --segment``):

``border``
    The background is a plane per CIE Lab channel fitted robustly to a band
    along the image border (:func:`border_fit`); pixels far from it are the
    object (hysteresis between the border noise ceiling and Otsu's threshold),
    cleaned (opening, small components dropped, enclosed holes filled unless
    they are large and background-coloured) and feathered. Fast and exact on
    plain or gently lit backdrops; it cannot tell a patterned floor from an
    object.
``grabcut``
    OpenCV's GrabCut (colour GMMs + graph cut) on a copy at most
    :data:`GRABCUT_SIZE` pixels wide, initialised from priors rather than a
    user rectangle: the outer border band is background, a centred ellipse is
    probably object, and the border model's confident pixels are probably
    object or probably background. The largest components are kept, holes
    filled, the mask upsampled and feathered. Works on textured and cluttered
    backgrounds as long as the object is roughly central and differs in colour.
``model``
    The learned mask network (:mod:`recon_cli.io.masknet`: the frozen ImageNet
    EfficientNet-Lite0 trunk and a small decoder trained on photo-like
    renders, weights ``weights/masknet.pt``) gives an object probability at
    two scales, averaged in logit space (:data:`MODEL_SIZES`: the photo
    letterboxed into 224 px, the training size, and into 384 px, which
    resolves thin parts). GrabCut then re-cuts the box around the network's
    object at up to :data:`MODEL_GRABCUT_SIZE` pixels, seeded from the
    probability (confident pixels sure, the rest probable; inside the
    network's outline only the object is ever sure); a hole stays open only
    where the network and GrabCut both see background (chair backs, frames).
    On the photo-like test set: mean IoU 0.940, 0.809 on the 10% hardest
    backgrounds (one scale, GrabCut on a 200-px copy of the whole photo, every
    hole filled: 0.899 and 0.723); see ``weights/MASKNET.md``.
``auto`` (default)
    ``border`` when the backdrop is plain and near-white (a product shot or a
    render: there its edges are exact, and it finds flat one-colour shapes,
    which the network takes for background), else ``model`` (when the
    network's weights are not installed: ``border`` on any plain backdrop,
    else ``grabcut``). "Plain" is measured on the border band
    (:attr:`BorderFit.plain`): the robust noise ceiling of the fitted plane is
    low and few border pixels are outliers; "near-white": the band's median
    CIE L* is at least :data:`WHITE_MIN_LIGHTNESS`. On the photo-like test set
    (``recon data photos``) the network beats the border model on every plain
    backdrop that is not near-white (gradients: 0.94 vs 0.82); on the
    near-white ones, which carry noise, JPEG artefacts and shadows there, it
    now scores higher too (0.97 vs 0.93), but the photo-like renders have no
    flat shapes; see ``benchmarks/results/segmentation.json``.
``none``
    No mask: the whole photo is used, padded to a square (no framing).

Whatever the method, :func:`check_mask` refuses a result that is not a
confident object: almost nothing (< 0.2% of the pixels), nearly everything
(> 90%), or a region covering most of the image border (the background
itself). The caller turns that into one error line suggesting ``--mask``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon_cli.errors import CheckpointError, ConfigError, InputError
from recon_cli.io.choices import SEGMENT_METHODS  # noqa: F401 - choices of ``--segment`` (import-free module)

#: Longer side of the copy on which the border model runs (mask then upsampled).
MASK_SIZE: int = 512

#: Longer side of the copy on which GrabCut runs.
GRABCUT_SIZE: int = 200

#: GrabCut iterations (colour models re-fitted and the graph re-cut each time).
GRABCUT_ITERATIONS: int = 4
#: ``model``: refine the network's mask with GrabCut seeded from its confident pixels.
MODEL_REFINE: bool = True
#: ``model``: squares the mask network sees the photo in (logits averaged): the training size, and one that
#: resolves thin parts.
MODEL_SIZES: tuple[int, ...] = (224, 384)
#: ``model``: longer side of the copy of the object's box that GrabCut refines.
MODEL_GRABCUT_SIZE: int = 512
#: ``model``: GrabCut iterations there.
MODEL_GRABCUT_ITERATIONS: int = 2

#: A mask covering less than this share of the image is "no object".
MIN_COVERAGE: float = 0.002
#: A mask covering more than this share of the image is "the whole frame".
MAX_COVERAGE: float = 0.90
#: A mask covering more than this share of the image's border band is the background, not an object.
MAX_BORDER_COVERAGE: float = 0.5

#: ``auto`` uses the border model when the border band's noise ceiling is at most this (Delta E)...
PLAIN_MAX_NOISE: float = 20.0
#: ... and at least this share of the border band fits the plane.
PLAIN_MIN_INLIERS: float = 0.85
#: ... and (with the mask network installed) the band's median CIE L* is at least this (near-white).
WHITE_MIN_LIGHTNESS: float = 90.0

_BORDER_FRACTION = 0.03
_MIN_DELTA_E = 6.0
_FEATHER_SIGMA = 0.8
_BOX_MARGIN = 0.15  # of the object's longer side, around the network's mask (``model``)
_BOX_PAD = 8  # pixels, added to that margin
_SMOOTH_SIGMA = 0.5


@dataclass
class BorderFit:
    """The border-colour model of one image (on the working copy)."""

    dist: np.ndarray  # (H, W) Delta E of each pixel to the fitted background plane
    low: float  # noise ceiling of the border band (hysteresis low threshold)
    inliers: float  # share of border-band pixels that fit the plane
    lightness: float = 100.0  # median CIE L* of the border band

    @property
    def plain(self) -> bool:
        """True when the backdrop looks plain enough for the border model alone."""
        return self.low <= PLAIN_MAX_NOISE and self.inliers >= PLAIN_MIN_INLIERS

    @property
    def white(self) -> bool:
        """True when the backdrop is plain and near-white."""
        return self.plain and self.lightness >= WHITE_MIN_LIGHTNESS


@dataclass
class Segmentation:
    """An object mask and how it was made."""

    alpha: np.ndarray  # (H, W) float32 soft mask in [0, 1], in the input's pixel grid
    method: str  # "border" or "grabcut"
    fit: BorderFit | None = None


# --------------------------------------------------------------------------- entry point


def segment(rgb: np.ndarray, method: str = "auto") -> Segmentation:
    """Object mask of an opaque photo (H, W, 3) uint8 with ``method`` (not "none").

    Raises :class:`InputError` (no file named; the caller adds it) when the
    method finds no confident object.
    """
    if method not in SEGMENT_METHODS or method == "none":
        raise ValueError(f"unknown segmentation method {method!r}; valid: {', '.join(SEGMENT_METHODS[:-1])}")
    small, scale = _downscale(rgb, MASK_SIZE)
    fit = border_fit(_lab(small))
    use = method if method != "auto" else _auto_method(fit)
    if use == "border":
        alpha = border_mask(fit)
        if alpha is None:
            raise InputError("no clear object stands out from the background")
    elif use == "model":
        try:
            alpha = model_mask(small)
        except (CheckpointError, ConfigError):  # weights unreadable, or not for the installed trunk
            if method != "auto":
                raise
            use, alpha = "grabcut", grabcut_mask(small, fit=fit)
    else:
        alpha = grabcut_mask(small, fit=fit)
    check_mask(alpha > 0.5, what=f"the object mask ({use})")
    if scale != 1.0:
        alpha = _upsample(alpha, rgb.shape[:2])
    return Segmentation(alpha, use, fit)


def check_mask(mask: np.ndarray, *, what: str = "the object mask") -> None:
    """Raise InputError unless the boolean ``mask`` (H, W) looks like one object in the frame."""
    coverage = float(mask.mean())
    if coverage < MIN_COVERAGE:
        raise InputError(f"no object found: {what} covers {coverage:.2%} of the image")
    if coverage > MAX_COVERAGE:
        raise InputError(f"no clear object: {what} covers {coverage:.0%} of the image (nearly the whole frame)")
    band = _border_band(mask.shape)
    on_border = float(mask[band].mean())
    if on_border > MAX_BORDER_COVERAGE:
        raise InputError(f"no clear object: {what} covers {on_border:.0%} of the image border (the background)")


# --------------------------------------------------------------------------- border model


def _lab(rgb: np.ndarray) -> np.ndarray:
    from scipy import ndimage
    from skimage.color import rgb2lab

    return ndimage.gaussian_filter(rgb2lab(rgb), sigma=(_SMOOTH_SIGMA, _SMOOTH_SIGMA, 0))  # (H, W, 3) float64


def _border_band(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    band = max(2, round(_BORDER_FRACTION * min(h, w)))
    border = np.zeros((h, w), bool)
    border[:band] = border[-band:] = True
    border[:, :band] = border[:, -band:] = True
    return border


def border_fit(lab: np.ndarray) -> BorderFit:
    """Fit a plane per Lab channel to the border band (robustly); distances and noise ceiling."""
    h, w = lab.shape[:2]
    border = _border_band((h, w))
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
    return BorderFit(dist, low, float(keep.mean()), float(np.median(colours[:, 0])))


def border_mask(fit: BorderFit) -> np.ndarray | None:
    """Soft mask (H, W) float32 from a border fit; None when no object stands out (or nearly all does)."""
    from scipy import ndimage
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu

    dist, low = fit.dist, fit.low
    if min(dist.shape) < 8:
        return None
    high = max(float(threshold_otsu(dist)), 1.5 * low) if np.ptp(dist) > 0 else np.inf
    mask = apply_hysteresis_threshold(dist, low, high)
    mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
    mask = _keep_large_components(mask)
    mask = _fill_object_holes(mask, dist, low)
    if not mask.any():
        return None
    return _feather(mask)


def _feather(mask: np.ndarray, sigma: float = _FEATHER_SIGMA) -> np.ndarray:
    from scipy import ndimage

    return np.clip(ndimage.gaussian_filter(mask.astype(np.float32), sigma=sigma), 0.0, 1.0)


def _keep_large_components(mask: np.ndarray, share: float = 0.1) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask
    areas = np.bincount(labels.ravel())[1:]  # (n,)
    keep = np.flatnonzero(areas >= share * areas.max()) + 1
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


# --------------------------------------------------------------------------- GrabCut


def grabcut_mask(rgb: np.ndarray, *, fit: BorderFit | None = None, iterations: int = GRABCUT_ITERATIONS) -> np.ndarray:
    """Soft mask (H, W) float32 of the central object by GrabCut seeded from priors (see the module docstring)."""
    small, scale = _downscale(rgb, GRABCUT_SIZE)
    h, w = small.shape[:2]
    seeds = _grabcut_seeds((h, w), None if fit is None else _resize_float(fit.dist, (h, w)),
                           None if fit is None else fit.low)
    mask = _clean(_run_grabcut(small, seeds, iterations))
    alpha = _feather(mask)
    return alpha if scale == 1.0 else _upsample(alpha, rgb.shape[:2])


def _run_grabcut(rgb: np.ndarray, seeds: np.ndarray, iterations: int) -> np.ndarray:
    """Boolean object mask of GrabCut on ``rgb`` initialised with the label map ``seeds`` (GC_* values)."""
    import cv2

    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    labels = seeds.copy()
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:  # e.g. too few pixels to fit a colour model
        raise InputError(f"no object found: GrabCut could not model the image ({str(exc).splitlines()[-1]})") from exc
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def _grabcut_seeds(shape: tuple[int, int], dist: np.ndarray | None, low: float | None) -> np.ndarray:
    """GrabCut label map: border band background, centre ellipse probably object, border-model evidence."""
    import cv2

    h, w = shape
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    ellipse = ((xx - w / 2) / (0.30 * w)) ** 2 + ((yy - h / 2) / (0.30 * h)) ** 2 <= 1.0
    seeds[ellipse] = cv2.GC_PR_FGD
    core = ((xx - w / 2) / (0.12 * w)) ** 2 + ((yy - h / 2) / (0.12 * h)) ** 2 <= 1.0  # always a candidate
    if dist is not None and low is not None:
        inner = ((xx - w / 2) / (0.46 * w)) ** 2 + ((yy - h / 2) / (0.46 * h)) ** 2 <= 1.0
        seeds[inner & (dist > 2.5 * low)] = cv2.GC_PR_FGD
        seeds[(dist < 0.5 * low) & ~core] = cv2.GC_PR_BGD
    seeds[_border_band((h, w))] = cv2.GC_BGD
    return seeds


def _clean(mask: np.ndarray, prob: np.ndarray | None = None) -> np.ndarray:
    """Opening, components over 10% of the largest, holes filled; given the network's object probability
    ``prob``, only the holes it does not see background through (mean probability at least 0.5)."""
    from scipy import ndimage

    mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
    mask = _keep_large_components(mask, share=0.1)
    filled = ndimage.binary_fill_holes(mask)
    if prob is None:
        return filled
    holes, n = ndimage.label(filled & ~mask)
    if n == 0:
        return filled
    seen = np.asarray(ndimage.mean(prob, holes, np.arange(1, n + 1)))
    return filled & ~np.isin(holes, np.flatnonzero(seen < 0.5) + 1)


# --------------------------------------------------------------------------- learned


def _auto_method(fit: BorderFit) -> str:
    """``auto``'s choice: border on near-white plain backdrops, else the mask network when its weights are
    installed; without them, border on any plain backdrop and GrabCut elsewhere."""
    from recon_cli.io.masknet import default_masknet_path

    if default_masknet_path() is not None:
        return "border" if fit.white else "model"
    return "border" if fit.plain else "grabcut"


def model_mask(rgb: np.ndarray, *, refine: bool = MODEL_REFINE) -> np.ndarray:
    """Soft mask (H, W) float32 from the mask network (:mod:`recon_cli.io.masknet`, at two scales:
    :data:`MODEL_SIZES`); with ``refine``, GrabCut re-cuts the object's box
    (:func:`_refine_in_box`). Holes stay open where both the network and GrabCut see background."""
    from recon_cli.io.masknet import default_masknet_path, predict

    path = default_masknet_path()
    if path is None:
        raise InputError("--segment model needs the mask network weights (weights/masknet.pt), which are not "
                         "installed; use --segment grabcut")
    prob = predict(rgb, path, sizes=MODEL_SIZES)
    mask = prob > 0.5
    if not mask.any():
        raise InputError("no object found: the mask network sees no object")
    if refine:
        mask = _refine_in_box(rgb, prob)
    return _feather(_clean(mask, prob))


def _refine_in_box(rgb: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Boolean mask of GrabCut run on the box around the network's object (its mask plus a margin), on a
    copy at most :data:`MODEL_GRABCUT_SIZE` pixels long, seeded from the network's probability
    ``prob``: confident pixels are sure object, or sure background outside the object's outline; the
    rest, holes inside the outline included (the coffee in a cup), probable. Outside the box:
    background. Working on the box keeps thin parts a few pixels wide, and the background colour
    model local."""
    import cv2
    from scipy import ndimage

    h, w = prob.shape
    ys, xs = np.nonzero(prob > 0.5)
    pad = _BOX_MARGIN * max(np.ptp(ys), np.ptp(xs)) + _BOX_PAD
    top, bottom = int(max(0, ys.min() - pad)), int(min(h, ys.max() + 1 + pad))
    left, right = int(max(0, xs.min() - pad)), int(min(w, xs.max() + 1 + pad))
    box, scale = _downscale(rgb[top:bottom, left:right], MODEL_GRABCUT_SIZE)
    p = _resize_float(prob[top:bottom, left:right], box.shape[:2])
    seeds = np.full(p.shape, cv2.GC_PR_BGD, np.uint8)
    seeds[p > 0.5] = cv2.GC_PR_FGD
    seeds[(p < 0.05) & ~ndimage.binary_fill_holes(p > 0.5)] = cv2.GC_BGD  # inside the outline, colour decides
    seeds[ndimage.binary_erosion(p > 0.9, iterations=2)] = cv2.GC_FGD
    found = _run_grabcut(box, seeds, MODEL_GRABCUT_ITERATIONS)
    if scale != 1.0:
        found = _resize_float(found.astype(np.float32), (bottom - top, right - left)) > 0.5
    mask = np.zeros((h, w), bool)
    mask[top:bottom, left:right] = found
    return mask


# --------------------------------------------------------------------------- resizing


def _downscale(rgb: np.ndarray, longest: int) -> tuple[np.ndarray, float]:
    """A copy of ``rgb`` whose longer side is at most ``longest`` (area-averaged), and the scale used."""
    h, w = rgb.shape[:2]
    if max(h, w) <= longest:
        return rgb, 1.0
    from PIL import Image

    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(small), scale


def _resize_float(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if arr.shape == shape:
        return arr
    return np.asarray(Image.fromarray(arr.astype(np.float32)).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def _upsample(alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.clip(_resize_float(alpha, shape), 0.0, 1.0).astype(np.float32)
