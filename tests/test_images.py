"""Image loading (bad files, modes, EXIF, size cap) and photo preprocessing (alpha, background removal, framing)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recon_cli.errors import InputError
from recon_cli.io.images import (FRAME_FILL, fill_fraction, frame_object, load_image, load_mask, mask_image, prepare_image,
                                 preprocess, read_image, remove_background)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    return path


def _synthetic_photo(rng: np.random.Generator, h: int = 180, w: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A coloured object (ellipse + bar) on a grey background with a gradient and noise; (image, true mask)."""
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([120 + 25 * xx / w, 125 + 15 * yy / h, 130 - 10 * xx / w], axis=-1)
    obj = ((xx - 140) ** 2 / 55**2 + (yy - 80) ** 2 / 40**2 <= 1) | ((np.abs(xx - 95) < 15) & (np.abs(yy - 120) < 40))
    img = bg.copy()
    img[obj] = [40, 90, 200]
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return img, obj


# ---------------------------------------------------------------- loading


def test_rgb_png_loads(tmp_path: Path) -> None:
    Image.new("RGB", (30, 20), (1, 2, 3)).save(tmp_path / "a.png")
    im = load_image(tmp_path / "a.png")
    assert im.mode == "RGB" and im.size == (30, 20) and im.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"this is not an image"), "not an image"),
        (lambda p: p.write_bytes(b""), "not an image"),
    ],
)
def test_not_an_image(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        load_image(path)
    assert info.value.path == str(path)


def test_truncated_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info:
        load_image(tmp_path / "cut.png")
    assert "cut.png" in str(info.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_size_cap_checked_before_decoding(tmp_path: Path) -> None:
    path = _png_header_only(tmp_path / "huge.png", 30_000, 30_000)  # 900 Mpx claimed, ~100 bytes on disk
    with pytest.raises(InputError, match="too large"):
        load_image(path)
    path = _png_header_only(tmp_path / "big.png", 8000, 6000)  # 48 Mpx: over our 40 Mpx default only
    with pytest.raises(InputError, match=r"too large: 8000x6000"):
        load_image(path)
    Image.new("RGB", (100, 100)).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="limit 5,000"):
        load_image(tmp_path / "small.png", max_pixels=5000)


def test_grayscale_and_bilevel_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (8, 8), 77).save(tmp_path / "g.png")
    Image.new("1", (8, 8), 1).save(tmp_path / "b.png")
    assert load_image(tmp_path / "g.png").getpixel((3, 3)) == (77, 77, 77)
    assert load_image(tmp_path / "b.png").getpixel((3, 3)) == (255, 255, 255)


def test_16_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    im = load_image(tmp_path / "deep.png")
    assert im.mode == "RGB"
    assert [im.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    im = load_image(tmp_path / "c.jpg")
    assert im.mode == "RGB"
    r, g, b = im.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60  # red


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([255, 255, 255, 255, 0, 0] + [0] * 762)
    im.putpixel((5, 5), 1)
    im.save(tmp_path / "p.png", transparency=0)
    out = load_image(tmp_path / "p.png")
    assert out.mode == "RGBA"
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((5, 5)) == (255, 0, 0, 255)


def test_animated_gif_uses_first_frame_with_warning(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    loaded = read_image(tmp_path / "anim.gif")
    r, g, b = loaded.image.convert("RGB").getpixel((6, 6))
    assert r > 200 and b < 50
    assert any("first frame" in w for w in loaded.warnings)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (20, 40)


# ---------------------------------------------------------------- preprocessing


def _bbox(fg: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(fg)
    return xs.min(), xs.max() + 1, ys.min(), ys.max() + 1


def test_rgba_uses_alpha_and_frames_on_white() -> None:
    arr = np.zeros((100, 160, 4), np.uint8)
    arr[10:50, 20:60] = [200, 30, 30, 255]  # opaque red square off-centre, rest transparent black
    tensor, image = preprocess(Image.fromarray(arr, "RGBA"), size=128)
    assert tensor.shape == (3, 128, 128) and tensor.dtype.__str__() == "torch.float32"
    out = np.asarray(image)
    assert out.shape == (128, 128, 3)
    assert np.array_equal(out[0, 0], [255, 255, 255]) and np.array_equal(out[-1, -1], [255, 255, 255])
    fg = (out < 200).any(axis=-1)
    x0, x1, y0, y1 = _bbox(fg)
    assert abs((x0 + x1) / 2 - 64) <= 1.5 and abs((y0 + y1) / 2 - 64) <= 1.5
    assert abs(max(x1 - x0, y1 - y0) / 128 - FRAME_FILL) < 0.02  # (Lanczos ringing aside)
    assert np.allclose(tensor.permute(1, 2, 0).numpy() * 255, out, atol=0.5)


def test_background_removed_from_synthetic_photo() -> None:
    rng = np.random.default_rng(1)
    img, truth = _synthetic_photo(rng)
    alpha = remove_background(img)
    assert alpha is not None and alpha.shape == truth.shape
    mask = alpha > 0.5
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9


def test_photo_is_centred_on_white_at_frame_fill() -> None:
    img, _ = _synthetic_photo(np.random.default_rng(2))
    # a flat shape on grey: auto would ask the mask network (grey is not near-white); framing is the point here
    prepared = prepare_image(Image.fromarray(img), size=224, segment="border")
    assert prepared.method == "border" and prepared.warnings == []
    out = np.asarray(prepared.image)
    border = np.concatenate([out[:3].reshape(-1, 3), out[-3:].reshape(-1, 3), out[:, :3].reshape(-1, 3)])
    assert border.min() >= 250  # the grey background is gone
    x0, x1, y0, y1 = _bbox((out < 200).any(axis=-1))
    assert abs((x0 + x1) / 2 - 112) <= 2 and abs((y0 + y1) / 2 - 112) <= 2
    assert abs(max(x1 - x0, y1 - y0) / 224 - FRAME_FILL) < 0.02
    assert abs(fill_fraction(out) - FRAME_FILL) < 0.04


def test_no_clear_object_fails_and_suggests_mask() -> None:
    rng = np.random.default_rng(3)
    plain = np.clip(128 + rng.normal(0, 3, (90, 120, 3)), 0, 255).astype(np.uint8)
    for method in ("auto", "border", "grabcut"):
        with pytest.raises(InputError, match="--mask FILE"):
            prepare_image(Image.fromarray(plain), size=64, segment=method)


def test_segment_none_pads_whole_image() -> None:
    arr = np.full((50, 100, 3), 100, np.uint8)
    arr[20:30, 40:60] = 30
    prepared = prepare_image(Image.fromarray(arr), size=100, segment="none")
    out = np.asarray(prepared.image)
    assert prepared.method == "none" and prepared.mask is None and prepared.warnings == []
    assert np.array_equal(out[0, 50], [255, 255, 255]) and np.array_equal(out[40, 10], [100, 100, 100])
    assert np.array_equal(out[50, 50], [30, 30, 30])


@pytest.mark.parametrize("segment", ["auto", "none"])
@pytest.mark.parametrize(("make", "message"), [
    (lambda: Image.new("RGB", (1, 1), (120, 50, 50)), "image too small"),
    (lambda: Image.new("RGB", (80, 60), (255, 255, 255)), "blank"),
    (lambda: Image.new("RGB", (80, 60), (0, 0, 0)), "blank"),
    (lambda: Image.new("RGBA", (80, 60), (200, 10, 10, 0)), "fully transparent"),
])
def test_junk_images_are_refused(make, message: str, segment: str) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=message):
        prepare_image(make(), size=64, segment=segment)


def test_user_mask_overrides_segmentation(tmp_path: Path) -> None:
    img, truth = _synthetic_photo(np.random.default_rng(4))
    mask = np.zeros(truth.shape, np.uint8)
    mask[100:160, 80:110] = 7  # only the bar, any non-zero value
    Image.fromarray(mask).save(tmp_path / "m.png")
    loaded = load_mask(tmp_path / "m.png", (img.shape[1], img.shape[0]))
    assert loaded.dtype == bool and loaded.sum() == 60 * 30
    prepared = prepare_image(Image.fromarray(img), size=128, mask=loaded)
    assert prepared.method == "mask" and np.array_equal(prepared.mask > 0.5, loaded)
    out = np.asarray(prepared.image)
    x0, x1, y0, y1 = _bbox((out < 200).any(axis=-1))
    assert abs(max(x1 - x0, y1 - y0) / 128 - FRAME_FILL) < 0.03 and abs((y1 - y0) - 2 * (x1 - x0)) <= 2


def test_bad_mask_files(tmp_path: Path) -> None:
    Image.new("L", (30, 20), 255).save(tmp_path / "small.png")
    with pytest.raises(InputError, match="mask is 30x20 but the photo is 240x180") as info:
        load_mask(tmp_path / "small.png", (240, 180))
    assert "small.png" in str(info.value)
    Image.new("RGB", (240, 180), (0, 0, 0)).save(tmp_path / "zero.png")
    with pytest.raises(InputError, match="all zero"):
        load_mask(tmp_path / "zero.png", (240, 180))


def test_mask_image_in_the_photos_grid() -> None:
    alpha = np.zeros((50, 100), np.float32)
    alpha[10:40, 20:60] = 1.0
    image = mask_image(alpha, (200, 100))
    assert image.mode == "L" and image.size == (200, 100)
    arr = np.asarray(image)
    assert arr[50, 80] == 255 and arr[5, 5] == 0


def test_frame_object_crops_with_white_beyond_the_photo() -> None:
    rgb = np.full((100, 100, 3), 90, np.uint8)
    alpha = np.zeros((100, 100), np.float32)
    alpha[0:40, 0:20] = 1.0  # object in the corner: the frame reaches beyond the photo
    out = np.asarray(frame_object(rgb, alpha, size=72, fill=0.5))
    assert out.shape == (72, 72, 3)
    fg = (out < 200).any(axis=-1)
    x0, x1, y0, y1 = _bbox(fg)
    assert abs((y1 - y0) - 36) <= 1 and abs((x1 - x0) - 18) <= 1
    assert abs((x0 + x1) / 2 - 36) <= 1 and abs((y0 + y1) / 2 - 36) <= 1
    assert (out[~fg] >= 250).all()
    shifted = np.asarray(frame_object(rgb, alpha, size=72, fill=0.5, shift=(0.25, 0.0)))
    sx0, sx1, _, _ = _bbox((shifted < 200).any(axis=-1))
    assert abs((sx0 + sx1) / 2 - 18) <= 1  # frame moved right: the object appears left


def test_fully_transparent_image_is_an_error() -> None:
    with pytest.raises(InputError, match="fully transparent"):
        preprocess(Image.new("RGBA", (20, 20), (0, 0, 0, 0)))
