"""Photo-like images (domain randomisation): truth masks, determinism, held-out backgrounds, the set writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.data.photos import (FAMILIES, HELD_OUT_FAMILIES, PLAIN, PhotoOptions, background, coverage, network_input,
                                   photo_like, sample_rng)
from recon_cli.data.render import intrinsics, look_at
from recon_cli.io.images import FRAME_FILL

runner = CliRunner()


def _mesh() -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.3))
    box.visual.face_colors = [200, 40, 40, 255]
    return box


def test_coverage_is_the_projected_silhouette() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    K, Rt = intrinsics(128, 1.0), look_at(30.0, 20.0, 2.0)
    alpha = coverage(sphere, K, Rt, 128)
    assert alpha.shape == (128, 128) and set(np.unique(alpha)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    # a sphere of radius r at distance d projects to a disc of radius f * r / sqrt(d^2 - r^2)
    expected = np.pi * (128 * 0.5 / np.sqrt(4.0 - 0.25)) ** 2
    assert abs(alpha.sum() - expected) / expected < 0.02
    ys, xs = np.nonzero(alpha > 0.5)
    assert abs(xs.mean() - 63.5) < 0.5 and abs(ys.mean() - 63.5) < 0.5


def test_same_seed_same_photo_and_mask_matches_the_object() -> None:
    a = photo_like(_mesh(), sample_rng(3, 5, "test"), split="test")
    b = photo_like(_mesh(), sample_rng(3, 5, "test"), split="test")
    c = photo_like(_mesh(), sample_rng(3, 6, "test"), split="test")
    assert np.array_equal(a.photo, b.photo) and np.array_equal(a.alpha, b.alpha) and a.family == b.family
    assert not np.array_equal(a.photo, c.photo)
    sample = photo_like(_mesh(), sample_rng(0, 1), family="gradient", options=PhotoOptions(blur_sigma=(0, 0)))
    inside = sample.photo[sample.alpha == 1.0].astype(float)
    outside = sample.photo[sample.alpha == 0.0].astype(float)
    assert 0.01 < sample.mask.mean() < 0.9
    assert inside[:, 0].mean() > inside[:, 2].mean() + 40  # the red box is where the mask says
    assert np.abs(inside.mean(axis=0) - outside.mean(axis=0)).max() > 20


def test_held_out_families_are_never_drawn_for_training() -> None:
    train = {photo_like(_mesh(), sample_rng(0, i, "train"), options=PhotoOptions(size=48)).family for i in range(60)}
    test = {photo_like(_mesh(), sample_rng(0, i, "test"), split="test", options=PhotoOptions(size=48)).family
            for i in range(60)}
    assert not train & set(HELD_OUT_FAMILIES) and PLAIN in train
    assert set(HELD_OUT_FAMILIES) <= test


@pytest.mark.parametrize("family", [PLAIN, *[f for f in FAMILIES if f != "texture"]])
def test_backgrounds_are_images(family: str) -> None:
    bg = background(family, np.random.default_rng(0), 40, 60)
    assert bg.shape == (40, 60, 3) and bg.dtype == np.uint8
    assert family == PLAIN or bg.std() > 1.0


def test_texture_family_uses_the_given_images(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "grass.png")
    bg = background("texture", np.random.default_rng(0), 40, 60, textures=[tmp_path / "grass.png"])
    assert np.array_equal(bg[5, 5], [10, 200, 30])


def test_network_input_frames_like_inference() -> None:
    sample = photo_like(_mesh(), sample_rng(0, 2), family="noise")
    image = np.asarray(network_input(sample, size=112))
    fg = (np.abs(image.astype(int) - 255).max(axis=-1) > 40)
    ys, xs = np.nonzero(fg)
    assert abs(max(np.ptp(xs), np.ptp(ys)) / 112 - FRAME_FILL) < 0.05
    jittered = network_input(sample, size=112, rng=np.random.default_rng(0))
    assert jittered.size == (112, 112)


def test_data_photos_writes_a_set_with_true_masks(tmp_path: Path) -> None:
    from recon_cli.data.render import RenderOptions
    from recon_cli.data.synth import synth_dataset

    root = tmp_path / "ds"
    synth_dataset(root, per_category=5, categories=["chair"], seed=3, render=RenderOptions(n_views=1), n_points=4096)
    out = tmp_path / "set"
    args = ["data", "photos", str(root), "-o", str(out), "--synth-seed", "3", "--per-model", "2", "--size", "64", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "index.json").read_text())
    assert len(doc["images"]) == json.loads(result.stdout)["images"] >= 2
    for entry in doc["images"]:
        photo, mask = Image.open(out / entry["image"]), Image.open(out / entry["mask"])
        assert photo.size == mask.size and max(photo.size) == 64 and mask.mode == "L"
        assert 0 < (np.asarray(mask) > 127).mean() < 0.9
    again = runner.invoke(app, [*args[:4], str(tmp_path / "set2"), *args[5:]])
    assert again.exit_code == 0
    first = doc["images"][0]["image"]
    assert (out / first).read_bytes() == (tmp_path / "set2" / first).read_bytes()  # deterministic
    wrong = runner.invoke(app, ["data", "photos", str(root), "-o", str(tmp_path / "bad"), "--synth-seed", "4"])
    assert wrong.exit_code == 1 and "do not match" in wrong.stderr
