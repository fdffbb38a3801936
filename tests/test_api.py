"""The Python API (recon_cli.load_model) on a tiny random-weight blob checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from helpers_models import BLOB_RADIUS, make_checkpoint
from PIL import Image

import recon_cli
from recon_cli.errors import CheckpointError, InputError, ReconError

FAST = {"device": "cpu", "quality": "draft", "resolution": 16, "threads": 1}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("w") / "doccnet.pt", "doccnet", nonempty=True)


@pytest.fixture(scope="module")
def model(weights: Path) -> recon_cli.ReconModel:
    return recon_cli.load_model(weights, **FAST)


def _photo_array(colour: tuple[int, int, int] = (200, 40, 40)) -> np.ndarray:
    arr = np.full((60, 80, 3), 128, np.uint8)
    arr[15:45, 25:55] = colour
    return arr


def _is_blob(mesh: trimesh.Trimesh) -> bool:
    radii = np.linalg.norm(mesh.vertices, axis=1)
    return mesh.is_watertight and BLOB_RADIUS - 0.05 < radii.min() and radii.max() < BLOB_RADIUS + 0.12


def test_import_is_light() -> None:
    code = "import sys, recon_cli; print('torch' in sys.modules, 'trimesh' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert "load_model" in recon_cli.__all__ and callable(recon_cli.load_model)
    with pytest.raises(AttributeError):
        recon_cli.no_such_name  # noqa: B018


def test_paths_pil_and_arrays(model: recon_cli.ReconModel, tmp_path: Path) -> None:
    arr = _photo_array()
    path = tmp_path / "photo.png"
    Image.fromarray(arr).save(path)
    meshes = [model.reconstruct(path), model.reconstruct(str(path)), model.reconstruct(Image.fromarray(arr)),
              model.reconstruct(arr), model.reconstruct(arr.astype(np.float32) / 255.0)]
    for mesh in meshes:
        assert isinstance(mesh, trimesh.Trimesh) and _is_blob(mesh)
    np.testing.assert_allclose(meshes[0].vertices, meshes[3].vertices)  # same pixels, same mesh


def test_details_and_mask(model: recon_cli.ReconModel) -> None:
    result = model.reconstruct(_photo_array(), return_details=True)
    assert isinstance(result, recon_cli.ReconResult)
    assert _is_blob(result.mesh) and result.stage1_mesh is not None and result.points.shape == (300, 3)
    assert result.mask is not None and result.mask.shape == (60, 80)
    assert result.mask[30, 40] > 0.9 and result.mask[2, 2] < 0.1  # the red square is the object
    assert result.views[0].method in ("border", "grabcut", "model") and result.views[0].source == "<array>"
    assert result.views[0].image.size == (model.image_size,) * 2 and result.seconds > 0 and result.fusion is None


def test_fuse_and_many(model: recon_cli.ReconModel, tmp_path: Path) -> None:
    photos = [_photo_array(), _photo_array((40, 40, 200))]
    fused = model.reconstruct(photos, fuse=True, fusion="code", return_details=True)
    assert _is_blob(fused.mesh) and len(fused.views) == 2 and fused.fusion == "code"
    assert [v.source for v in fused.views] == ["<array>[0]", "<array>[1]"]
    with pytest.raises(InputError, match="fuse=True"):
        model.reconstruct(photos)
    with pytest.raises(InputError, match="unknown fusion"):
        model.reconstruct(photos, fuse=True, fusion="median")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    seen = []
    out = model.reconstruct_many([photos[0], bad, photos[1]], return_exceptions=True,
                                 on_result=lambda i, item: seen.append(i))
    assert _is_blob(out[0]) and _is_blob(out[2]) and sorted(seen) == [0, 1, 2]
    assert isinstance(out[1], InputError) and str(bad) in str(out[1]) and "not an image" in str(out[1])
    with pytest.raises(InputError, match="bad.png"):
        model.reconstruct_many([photos[0], bad])


def test_bad_inputs(model: recon_cli.ReconModel, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        model.reconstruct(tmp_path / "missing.png")
    with pytest.raises(InputError, match="shape"):
        model.reconstruct(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        model.reconstruct(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(InputError, match="expected a path"):
        model.reconstruct(42)  # type: ignore[arg-type]
    small = recon_cli.load_model(model.weights, max_pixels=1000, **FAST)
    with pytest.raises(InputError, match="too large"):
        small.reconstruct(_photo_array())
    with pytest.raises(InputError, match="too large"):
        small.reconstruct(Image.fromarray(_photo_array()))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        recon_cli.load_model(tmp_path / "none.pt")
    with pytest.raises(ReconError, match="quality"):
        recon_cli.load_model(model.weights, quality="ultra")


def test_user_mask(model: recon_cli.ReconModel) -> None:
    arr = _photo_array()
    mask = np.zeros(arr.shape[:2], bool)
    mask[10:50, 5:40] = True
    result = model.reconstruct(arr, mask=mask, return_details=True)
    assert result.views[0].method == "mask" and _is_blob(result.mesh)
    with pytest.raises(InputError, match="one photo"):
        model.reconstruct([arr, arr], fuse=True, mask=mask)


def test_empty_reconstruction_raises(weights: Path) -> None:
    empty = recon_cli.load_model(weights, threshold=0.999999, **FAST)
    with pytest.raises(recon_cli.EmptyReconstructionError, match="empty reconstruction") as info:
        empty.reconstruct(_photo_array())
    assert "highest occupancy anywhere is" in str(info.value)


def test_empty_message_names_the_peak_and_what_to_try() -> None:
    from recon_cli.pipeline import empty_message, peak_probability

    assert empty_message(0.4, None).endswith("try a lower threshold")
    assert "sees no object" in empty_message(0.4, 0.01)
    text = empty_message(0.4, 0.398, option="--threshold")
    assert "is 0.398" in text and text.endswith("try --threshold 0.35")
    assert peak_probability(np.array([-np.inf, 0.0, np.nan])) == 0.5
    assert peak_probability(np.array([np.nan])) == 0.0


def test_points_and_stage1_only(model: recon_cli.ReconModel, weights: Path) -> None:
    cloud = np.random.default_rng(0).normal(size=(500, 3)) * 10 + 100
    mesh = model.reconstruct_points(cloud)
    assert mesh.bounds.min() > 50  # back in the cloud's frame
    onet = recon_cli.load_model(weights, model="onet", **FAST)
    result = onet.reconstruct(_photo_array(), return_details=True)
    assert result.stage1_mesh is None and result.points is None and _is_blob(result.mesh)


def test_same_mesh_as_the_cli(weights: Path, model: recon_cli.ReconModel, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from recon_cli.cli.app import app
    from recon_cli.io.mesh import load_mesh

    path = tmp_path / "photo.png"
    Image.fromarray(_photo_array()).save(path)
    res = CliRunner().invoke(app, ["reconstruct", str(path), "-o", str(tmp_path / "p.ply"), "--weights",
                                   str(weights), "--quality", "draft", "--resolution", "16", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    cli_mesh = load_mesh(tmp_path / "p.ply")
    np.testing.assert_allclose(cli_mesh.vertices, model.reconstruct(path).vertices, atol=1e-5)
