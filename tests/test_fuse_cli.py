"""`recon reconstruct --fuse / --fuse-by / --preview` and `recon eval --views` on tiny random-weight models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_models import make_checkpoint
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.errors import InputError
from recon_cli.evaluate import choose_views
from recon_cli.io.mesh import load_mesh
from recon_cli.multiview import group_inputs

runner = CliRunner()
FAST = ["--quality", "draft", "--resolution", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("fw") / "blob.pt", "doccnet", nonempty=True)


def _photo(path: Path, colour: tuple[int, int, int] = (200, 40, 40)) -> Path:
    """A 64 x 48 red-ish square on grey (a plain backdrop the border segmentation finds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((48, 64, 3), 120, np.uint8)
    arr[10:38, 18:46] = colour
    Image.fromarray(arr).save(path)
    return path


def test_grouping(tmp_path: Path) -> None:
    for name in ("sofa_1.png", "sofa_2.png", "chair_1.png", "odd.png"):
        _photo(tmp_path / name)
    groups = {g.name: g for g in group_inputs([tmp_path], fuse_by=r"^(.+)_\d+")}
    assert [p.name for p in groups["sofa"].photos] == ["sofa_1.png", "sofa_2.png"]
    assert groups["odd"].error is not None and "does not match" in groups["odd"].error
    named = group_inputs([tmp_path], fuse_by=r"(?P<object>[a-z]+)")
    assert sorted(g.name for g in named) == ["chair", "odd", "sofa"]
    _photo(tmp_path / "f" / "mug" / "a.png")
    _photo(tmp_path / "f" / "mug" / "b.png")
    _photo(tmp_path / "f" / "cup" / "a.png")
    folders = {g.name: len(g.photos) for g in group_inputs([tmp_path / "f"], fuse_by="folder")}
    assert folders == {"cup": 1, "mug": 2}
    (one,) = group_inputs([tmp_path / "sofa_1.png", tmp_path / "sofa_2.png"])
    assert one.name == "sofa_1" and len(one.photos) == 2
    with pytest.raises(InputError, match="regular expression"):
        group_inputs([tmp_path], fuse_by="(")


def test_fuse_one_object(weights: Path, tmp_path: Path) -> None:
    photos = [_photo(tmp_path / f"v{i}.png", (200, 40 * i, 40)) for i in range(3)]
    out = tmp_path / "out" / "obj.ply"
    res = runner.invoke(app, ["reconstruct", *map(str, photos), "--fuse", "-o", str(out), "--weights", str(weights),
                              *FAST, "--preview", "--save-stages", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (result,) = doc["results"]
    assert result["output"] == str(out) and result["faces"] > 100 and result["watertight"]
    assert load_mesh(out).is_watertight
    assert (tmp_path / "out" / "obj.png").is_file() and (tmp_path / "out" / "obj.stage1.ply").is_file()
    assert (tmp_path / "out" / "obj.points.ply").is_file()


def test_fuse_by_batch_goes_on_past_bad_groups(weights: Path, tmp_path: Path) -> None:
    for name in ("mug_1.png", "mug_2.png", "cup_1.png", "stray.png"):
        _photo(tmp_path / "in" / name)
    (tmp_path / "in" / "bad_1.png").write_bytes(b"not an image")
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "in"), "--fuse-by", r"^(.+)_\d", "--out-dir",
                              str(tmp_path / "o"), "--weights", str(weights), *FAST, "--fusion", "code"])
    assert res.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["cup.obj", "mug.obj"]
    assert "stray.png: file name does not match" in res.output and "bad_1.png" in res.output
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "in"), "--fuse-by", r"^(.+)_\d", "-o",
                              str(tmp_path / "x.obj"), "--weights", str(weights), *FAST])
    assert res.exit_code == 1 and "--out-dir" in res.output
    res = runner.invoke(app, ["reconstruct", str(tmp_path / "in"), "--fuse", "--points", "a.ply"])
    assert res.exit_code == 2


def test_plain_reconstruct_preview_keeps_the_photo(weights: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "thing.png")
    before = photo.read_bytes()
    res = runner.invoke(app, ["reconstruct", str(photo), "--weights", str(weights), *FAST, "--preview"])
    assert res.exit_code == 0, res.output
    assert photo.read_bytes() == before
    preview = Image.open(tmp_path / "thing.preview.png")
    assert (np.asarray(preview.convert("RGB")) < 245).any()


def test_choose_views(tiny_dataset: Path) -> None:
    key = ("03001627", "ell00")
    folder = tiny_dataset / key[0] / key[1]
    assert choose_views(folder, key, 3, "first", 0) == [0, 1, 2]
    picked = choose_views(folder, key, 2, "random", 0)
    assert picked == choose_views(folder, key, 2, "random", 0) and len(set(picked)) == 2
    with pytest.raises(InputError, match="has 4"):
        choose_views(folder, key, 8, "first", 0)


def test_eval_views(weights: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    args = ["eval", "--data", str(tiny_dataset), "--weights", str(weights), "--quality", "draft", "--samples",
            "2000", "--json", "-c", "chair"]
    res = runner.invoke(app, [*args, "--views", "2", "--out", str(tmp_path / "v2")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["settings"]["views"] == 2 and summary["settings"]["fusion"] == "logits"
    assert summary["object_mean"]["failed"] == 0 and summary["object_mean"]["iou"] > 0
    res = runner.invoke(app, [*args, "--views", "8", "--fusion", "code", "--out", str(tmp_path / "v8")])
    assert res.exit_code == 0, res.output
    failed = json.loads(res.stdout)["object_mean"]  # every tiny model has 4 views: failed, not dropped
    assert failed["n"] == 2 and failed["failed"] == 2
    assert "8 views asked for but the model has 4" in (tmp_path / "v8" / "objects.csv").read_text()
    assert runner.invoke(app, [*args, "--views", "2", "--fusion", "max"]).exit_code == 2
