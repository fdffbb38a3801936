"""Segmentation of opaque photos: border model, GrabCut, auto choice, refusal of non-objects."""

from __future__ import annotations

import numpy as np
import pytest

from recon_cli.errors import InputError
from recon_cli.io.masknet import default_masknet_path
from recon_cli.io.segment import _lab, _resize_float, border_fit, check_mask, segment

HAS_NET = default_masknet_path() is not None


def _scene(rng: np.random.Generator, *, cluttered: bool, h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """An ellipse + bar object on a checkerboard with stripes (cluttered) or a plain grey gradient."""
    yy, xx = np.mgrid[0:h, 0:w] * (240 / h)  # object and pattern scale with the image
    if cluttered:
        check = ((xx // 20 + yy // 20) % 2).astype(float)
        bg = np.stack([140 + 60 * check, 110 + 50 * check, 90 + 30 * np.sin(xx / 7)], axis=-1)
    else:
        bg = np.stack([150 + 20 * xx / 320, 150 + 10 * yy / 240, 150 + 0 * xx], axis=-1)
    obj = ((xx - 160) ** 2 / 70**2 + (yy - 110) ** 2 / 55**2 <= 1) | ((np.abs(xx - 130) < 12) & (yy > 100) & (yy < 200))
    img = bg.copy()
    shade = 0.55 + 0.45 * np.clip(1.0 - np.hypot(xx - 135, yy - 85) / 120.0, 0.0, 1.0)  # lit from the top left
    img[obj] = np.array([40, 90, 200]) * shade[obj][:, None]
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8), obj


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("method", ["border", "grabcut"])
@pytest.mark.parametrize("cluttered", [False, True])
def test_colour_methods_find_a_flat_shape(method: str, cluttered: bool) -> None:
    """A one-colour shape: what the colour models separate exactly. (The mask network is not asked: its
    training backgrounds are full of such flat shapes, which it learned to call background.)"""
    img, truth = _scene(np.random.default_rng(1), cluttered=cluttered)
    result = segment(img, method)
    assert result.alpha.shape == truth.shape and result.alpha.dtype == np.float32
    assert _iou(result.alpha > 0.5, truth) > 0.93
    assert result.method == method


@pytest.mark.parametrize("method", ["model", "auto"])
@pytest.mark.parametrize(("family", "min_iou"), [("gradient", 0.95), ("clutter", 0.93), ("room", 0.8)])
def test_network_methods_find_a_rendered_object(method: str, family: str, min_iou: float) -> None:
    """A procedural sofa rendered photo-like (held-out test stream) over a plain, a cluttered and a room
    backdrop; without the network's weights, auto falls back to the colour methods. (In the room, the
    network also takes a patch of floor below the horizon for the object.)"""
    from recon_cli.data.photos import PhotoOptions, photo_like, sample_rng
    from recon_cli.data.synth import generate

    if method == "model" and not HAS_NET:
        pytest.skip("no mask-network weights installed")
    sample = photo_like(generate("sofa", 7), sample_rng(5, 0, "test"), split="test", options=PhotoOptions(size=320),
                        family=family, seed=0)
    result = segment(sample.photo, method)
    assert result.alpha.shape == sample.mask.shape
    assert _iou(result.alpha > 0.5, sample.mask) > (min_iou if HAS_NET else 0.6)
    if method == "auto":
        assert result.method == ("model" if HAS_NET else ("border" if result.fit.plain else "grabcut"))


def test_auto_uses_the_border_model_on_near_white_backdrops() -> None:
    img, truth = _scene(np.random.default_rng(5), cluttered=False)
    lifted = np.clip(img.astype(int) + 90, 0, 255).astype(np.uint8)  # ~ (240, 240, 240) backdrop
    lifted[truth] = img[truth]
    img = lifted
    result = segment(img, "auto")
    assert result.method == "border" and result.fit is not None and result.fit.white
    assert _iou(result.alpha > 0.5, truth) > 0.93


def test_plain_backdrop_is_recognised() -> None:
    plain, _ = _scene(np.random.default_rng(2), cluttered=False)
    busy, _ = _scene(np.random.default_rng(2), cluttered=True)
    assert border_fit(_lab(plain)).plain and not border_fit(_lab(busy)).plain


def test_large_images_are_segmented_on_a_copy_and_upsampled() -> None:
    """(GrabCut: the object is a flat one-colour shape, which the mask network is not asked about.)"""
    img, truth = _scene(np.random.default_rng(3), cluttered=True, h=720, w=960)
    result = segment(img, "grabcut")
    assert result.alpha.shape == (720, 960) and _iou(result.alpha > 0.5, truth) > 0.9


def test_check_mask_refuses_non_objects() -> None:
    mask = np.zeros((100, 100), bool)
    with pytest.raises(InputError, match="no object found"):
        check_mask(mask)
    with pytest.raises(InputError, match="nearly the whole frame"):
        check_mask(~mask)
    floor = mask.copy()
    floor[40:] = True  # the lower 60%: touches most of the border
    with pytest.raises(InputError, match="image border"):
        check_mask(floor)
    centre = mask.copy()
    centre[30:70, 20:80] = True
    check_mask(centre)


def test_unknown_method_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown segmentation method"):
        segment(np.zeros((20, 20, 3), np.uint8), "magic")


def test_model_without_weights_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import recon_cli.io.masknet as masknet

    monkeypatch.setattr(masknet, "default_masknet_path", lambda: None)
    img, truth = _scene(np.random.default_rng(4), cluttered=True)
    with pytest.raises(InputError, match="--segment grabcut"):
        segment(img, "model")
    assert segment(img, "auto").method == "grabcut"  # auto falls back to GrabCut
    plain, _ = _scene(np.random.default_rng(4), cluttered=False)
    assert segment(plain, "auto").method == "border"  # and to the border model on any plain backdrop


def test_auto_falls_back_to_grabcut_when_the_network_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import recon_cli.io.masknet as masknet
    from recon_cli.errors import CheckpointError

    def broken(path: str) -> None:
        raise CheckpointError("trained on other EfficientNet-Lite0 weights", path=path)

    monkeypatch.setattr(masknet, "default_masknet_path", lambda: "masknet.pt")
    monkeypatch.setattr(masknet, "load_masknet", broken)
    img, _ = _scene(np.random.default_rng(6), cluttered=True)
    assert segment(img, "auto").method == "grabcut"
    with pytest.raises(CheckpointError, match="other EfficientNet"):
        segment(img, "model")  # asked for by name: the error is the user's answer


def _frame_scene(rng: np.random.Generator, h: int = 384, w: int = 512, *, opening: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A square frame on a thin stem, over a checkerboard: background seen through its opening, or (not
    ``opening``) the opening of the frame's colour."""
    yy, xx = np.mgrid[0:h, 0:w]
    frame = (np.abs(xx - 256) < 90) & (np.abs(yy - 140) < 90)
    if opening:
        frame &= ~((np.abs(xx - 256) < 60) & (np.abs(yy - 140) < 60))
    stem = (np.abs(xx - 256) < 4) & (yy >= 230) & (yy < 262)
    obj = frame | stem
    check = ((xx // 24 + yy // 24) % 2).astype(float)
    img = np.stack([150 + 70 * check, 150 + 60 * check, 120 + 40 * check], axis=-1)
    img[obj] = (30, 80, 190)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8), obj


def _blurred_probability(truth: np.ndarray) -> np.ndarray:
    """What a network working at a quarter of 224 px sees: the true mask, coarse and blurred."""
    from PIL import Image
    from scipy import ndimage

    small = np.asarray(Image.fromarray(truth.astype(np.float32)).resize((56, 42), Image.Resampling.BILINEAR))
    coarse = np.asarray(Image.fromarray(small).resize(truth.shape[::-1], Image.Resampling.BILINEAR))
    return np.clip(ndimage.gaussian_filter(coarse, 3.0), 0.0, 1.0).astype(np.float32)


def test_model_refinement_keeps_thin_parts_and_open_holes(monkeypatch: pytest.MonkeyPatch) -> None:
    """GrabCut re-cuts the object's box at full resolution, so an 8-pixel stem the coarse network misses comes
    back; the frame's opening, which the network and the colour models both see as background, stays open."""
    import recon_cli.io.masknet as masknet

    img, truth = _frame_scene(np.random.default_rng(7))
    prob = _blurred_probability(truth)
    assert (prob[230:262, 256] > 0.5).mean() < 0.2  # the coarse probability misses the stem
    monkeypatch.setattr(masknet, "default_masknet_path", lambda: "masknet.pt")
    monkeypatch.setattr(masknet, "predict", lambda rgb, path, **kw: _resize_float(prob, rgb.shape[:2]))
    result = segment(img, "model")
    mask = result.alpha > 0.5
    assert result.method == "model" and _iou(mask, truth) > 0.95
    assert not mask[140, 256]  # the opening stays open
    assert mask[230:262, 256].mean() > 0.95  # the stem is back


def test_model_refinement_lets_colour_decide_inside_the_outline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the network sees background inside the object's outline (the coffee in a cup, a flat
    one-colour face), GrabCut's colour models decide: a region of the object's colour is object."""
    import recon_cli.io.masknet as masknet

    img, truth = _frame_scene(np.random.default_rng(8), opening=False)
    prob = _blurred_probability(_frame_scene(np.random.default_rng(8))[1])  # the network sees a frame
    assert prob[140, 256] < 0.05
    monkeypatch.setattr(masknet, "default_masknet_path", lambda: "masknet.pt")
    monkeypatch.setattr(masknet, "predict", lambda rgb, path, **kw: _resize_float(prob, rgb.shape[:2]))
    mask = segment(img, "model").alpha > 0.5
    assert mask[140, 256] and _iou(mask, truth) > 0.95
