"""Photo-like variants of dataset renders for the feature cache (issue 14: photos in the image stream)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon_cli.data.layout import load_cameras, load_pointcloud, open_view
from recon_cli.data.photos import photo_variant, render_silhouette, segmentation_error


def _view(root: Path, model: str, view: int = 0):
    model_dir = root / model
    K, Rt = load_cameras(model_dir)
    image = open_view(model_dir, view)
    return model_dir, image, K[view], Rt[view]


@pytest.mark.parametrize("model", ["03001627/ell00", "04379243/box03"])
def test_silhouette_matches_the_object_pixels_of_the_render(tiny_dataset: Path, model: str) -> None:
    model_dir, image, K, Rt = _view(tiny_dataset, model)
    points = load_pointcloud(model_dir)[0]
    pixels = np.asarray(image)
    drawn = (pixels.astype(int) < 235).any(-1)  # the shaded object on white
    silhouette = render_silhouette(points, K, Rt, image.height, image.width, pixels)
    inter = (silhouette & drawn).sum()
    # the fixture keeps 2048 surface samples (datasets: 100k, where recall is ~1.0)
    assert inter / silhouette.sum() > 0.95 and inter / drawn.sum() > 0.85
    # from the points alone (no render): still inside the object, most of it covered
    bare = render_silhouette(points, K, Rt, image.height, image.width)
    assert (bare & drawn).sum() / bare.sum() > 0.95 and (bare & drawn).sum() / drawn.sum() > 0.3
    # a wrong camera does not pass: the camera moved sideways by a fifth of the object gives another silhouette
    moved = Rt.copy()
    moved[0, 3] += 0.2
    other = render_silhouette(points, K, moved, image.height, image.width)
    assert (other & drawn).sum() / other.sum() < 0.9


def test_segmentation_error_stays_close_to_the_mask() -> None:
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:70] = True
    ious = []
    for seed in range(20):
        soft = segmentation_error(mask, np.random.default_rng(seed))
        assert soft.shape == mask.shape and soft.dtype == np.float32
        assert 0.0 <= soft.min() and soft.max() <= 1.0
        hard = soft > 0.5
        ious.append((hard & mask).sum() / (hard | mask).sum())
    assert min(ious) > 0.6 and np.mean(ious) < 0.97  # mostly imperfect, never lost
    assert np.array_equal(segmentation_error(mask, np.random.default_rng(3)),
                          segmentation_error(mask, np.random.default_rng(3)))


def test_photo_variant_is_a_framed_network_input(tiny_dataset: Path) -> None:
    model_dir, image, K, Rt = _view(tiny_dataset, "03001627/ell02")
    silhouette = render_silhouette(load_pointcloud(model_dir)[0], K, Rt, image.height, image.width, np.asarray(image))
    a = photo_variant(image, silhouette, np.random.default_rng(5), size=96)
    b = photo_variant(image, silhouette, np.random.default_rng(5), size=96)
    c = photo_variant(image, silhouette, np.random.default_rng(6), size=96)
    assert a.size == (96, 96) and a.mode == "RGB"
    arr = np.asarray(a).astype(int)
    assert np.array_equal(arr, np.asarray(b))
    assert not np.array_equal(arr, np.asarray(c))
    # framed on white like inference: the corners are white, the object is in the middle
    assert (arr[:4, :4] >= 250).all() and (arr[-4:, -4:] >= 250).all()
    assert (arr[40:56, 40:56] < 240).any()
    assert not np.array_equal(arr, np.asarray(image.resize((96, 96))))


# ------------------------------------------------------------------ recon data merge (training on two sources)


def test_data_merge_links_models_and_keeps_splits(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from recon_cli.cli.app import app
    from recon_cli.data import layout
    from recon_cli.data.shapenet import ShapeNetDataset

    other = tmp_path / "other"
    (other / "04379243").mkdir(parents=True)
    shutil.copytree(tiny_dataset / "04379243" / "box00", other / "04379243" / "real00")
    layout.write_split(other, "04379243", "train", ["real00"])
    layout.write_metadata(other, {"04379243": {"id": "04379243", "name": "table"}})
    runner = CliRunner()
    out = tmp_path / "merged"
    result = runner.invoke(app, ["data", "merge", str(tiny_dataset), str(other), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    train = ShapeNetDataset(out, "train", with_points=False, with_pointcloud=False).models
    assert ("04379243", "real00") in train and len(train) == 14 + 1
    assert layout.read_split(out, "03001627", "test") == layout.read_split(tiny_dataset, "03001627", "test")
    assert (out / "04379243" / "real00").is_symlink()
    # again: refused without --overwrite; a clash of model ids names both sources
    again = runner.invoke(app, ["data", "merge", str(tiny_dataset), str(other), "-o", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    clash = runner.invoke(app, ["data", "merge", str(tiny_dataset), str(tiny_dataset), "-o", str(tmp_path / "m2")])
    assert clash.exit_code == 1 and "is in both" in clash.output
    assert not (tmp_path / "m2").exists()
