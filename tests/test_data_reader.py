"""ShapeNetDataset and the layout helpers on the shared tiny_dataset fixture."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from recon_cli.data import layout
from recon_cli.data.shapenet import ShapeNetDataset, load_occupancy, load_pointcloud, load_view, read_split
from recon_cli.errors import DatasetError, InputError

CHAIR, TABLE = "03001627", "04379243"


def test_splits_and_lengths(tiny_dataset: Path) -> None:
    sizes = {s: len(ShapeNetDataset(tiny_dataset, s)) for s in layout.SPLITS}
    assert sizes == {"train": 14, "val": 2, "test": 4}
    assert layout.read_metadata(tiny_dataset)[TABLE]["name"] == "table"


def test_item_shapes_and_types(tiny_dataset: Path) -> None:
    ds = ShapeNetDataset(tiny_dataset, "train", n_points=512, image_size=64)
    item = ds[3]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert float(item["image"][:, 0, 0].min()) > 0.97  # white background, not normalised
    assert item["points"].shape == (512, 3) and item["occ"].shape == (512,)
    assert set(item["occ"].unique().tolist()) <= {0.0, 1.0}
    assert item["inputs"].shape == (300, 3) and item["inputs"].dtype == torch.float32
    assert (item["index"], item["synset"], item["model"]) == (3, *ds.models[3])
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["points"].shape == (2, 512, 3) and batch["model"] == [ds.models[0][1], ds.models[1][1]]


def test_eval_mode_is_deterministic_view0(tiny_dataset: Path) -> None:
    ds = ShapeNetDataset(tiny_dataset, "test", mode="eval", n_points=256)
    a, b = ds[1], ds[1]
    for key in ("image", "points", "occ", "inputs"):
        assert torch.equal(a[key], b[key])
    expected = load_view(tiny_dataset / ds.models[1][0] / ds.models[1][1], 0, size=224)
    assert torch.equal(a["image"], expected)


def test_train_mode_draws_random_views(tiny_dataset: Path) -> None:
    ds = ShapeNetDataset(tiny_dataset, "train", n_points=64, with_pointcloud=False)
    torch.manual_seed(0)
    images = {tuple(ds[0]["image"][:, 100, ::20].flatten().tolist()) for _ in range(12)}
    assert len(images) > 1


def test_all_points_and_input_noise(tiny_dataset: Path) -> None:
    ds = ShapeNetDataset(tiny_dataset, "val", mode="eval", n_points=0, with_image=False, input_noise=0.0)
    item = ds[0]
    points, occ = load_occupancy(ds.model_dir(0))
    assert torch.equal(item["points"], torch.from_numpy(points))
    assert torch.equal(item["occ"].bool(), torch.from_numpy(occ))
    surface, _ = load_pointcloud(ds.model_dir(0))
    # without noise the inputs are surface samples
    d = np.linalg.norm(item["inputs"].numpy()[:, None] - surface[None], axis=-1).min(axis=1)
    assert d.max() < 1e-6
    noisy = ShapeNetDataset(tiny_dataset, "val", mode="eval", with_image=False)[0]["inputs"].numpy()
    d = np.linalg.norm(noisy[:, None] - surface[None], axis=-1).min(axis=1)
    assert 0.001 < d.mean() < 0.02


def test_augment_crop(tiny_dataset: Path) -> None:
    ds = ShapeNetDataset(tiny_dataset, "train", augment=True, image_size=96, with_pointcloud=False)
    assert ds[0]["image"].shape == (3, 96, 96)


def test_category_filter(tiny_dataset: Path) -> None:
    by_name = ShapeNetDataset(tiny_dataset, "train", categories=["table"])
    by_id = ShapeNetDataset(tiny_dataset, "train", categories=[TABLE])
    assert by_name.models == by_id.models and {s for s, _ in by_name.models} == {TABLE}
    with pytest.raises(InputError, match="airplane"):
        ShapeNetDataset(tiny_dataset, "train", categories=["airplane"])


def test_split_file_tolerance_and_writing(tmp_path: Path) -> None:
    (tmp_path / CHAIR).mkdir()
    (tmp_path / CHAIR / "train.lst").write_text("a\n\nb\n")
    assert read_split(tmp_path, CHAIR, "train") == ["a", "b"]
    layout.write_split(tmp_path, CHAIR, "val", ["x", "y"])
    assert (tmp_path / CHAIR / "val.lst").read_text() == "x\ny"
    assert read_split(tmp_path, CHAIR, "test") == []


def test_missing_and_corrupt_models_are_skipped(tiny_dataset: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset, root)
    ids = read_split(root, CHAIR, "train")
    (root / CHAIR / ids[0] / "pointcloud.npz").unlink()            # missing: skipped at init
    (root / CHAIR / ids[1] / "points.npz").write_bytes(b"garbage")  # corrupt: found while loading
    with caplog.at_level(logging.WARNING, logger="recon"):
        ds = ShapeNetDataset(root, "train", categories=["chair"], mode="eval")
        assert ds.skipped == [(CHAIR, ids[0], "missing pointcloud.npz")]
        assert [m for _, m in ds.models] == ids[1:]
        item = ds[0]
    assert item["model"] == ids[2]  # the next readable model stands in
    assert ds.skipped[1][:2] == (CHAIR, ids[1]) and "points.npz" in ds.skipped[1][2]
    assert any(ids[1] in rec.getMessage() for rec in caplog.records)
    assert ds[0]["model"] == ids[2]  # deterministic


def test_bad_arguments(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        ShapeNetDataset(tiny_dataset, "training")
    with pytest.raises(InputError):
        ShapeNetDataset(tiny_dataset, "train", mode="predict")
    with pytest.raises(DatasetError):
        ShapeNetDataset(tmp_path / "nope", "train")
