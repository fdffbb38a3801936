"""`recon data check` and `recon data build` through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.data import layout
from recon_cli.data.check import check_dataset

CHAIR, TABLE = "03001627", "04379243"
runner = CliRunner()


@pytest.fixture()
def dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset, root)
    return root


def _check_json(root: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["data", "check", str(root), "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def _rewrite_npz(path: Path, **changes: object) -> None:
    with np.load(path) as data:
        arrays = dict(data)
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def test_clean_dataset_passes(dataset: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(dataset)])
    assert result.exit_code == 0, result.output
    assert "chair" in result.stdout and "table" in result.stdout
    code, doc = _check_json(dataset, "--full")
    assert code == 0 and doc["ok"] and doc["errors"] == 0 and doc["models"] == 20
    assert {c["synset"]: (c["train"], c["val"], c["test"]) for c in doc["categories"]} == {
        CHAIR: (7, 1, 2), TABLE: (7, 1, 2)}


def _model(root: Path, synset: str = CHAIR, index: int = 0) -> tuple[str, Path]:
    model = layout.read_split(root, synset, "train")[index]
    return model, root / synset / model


def test_missing_file(dataset: Path) -> None:
    model, model_dir = _model(dataset)
    (model_dir / "img_choy2016" / "002.jpg").unlink()
    (model_dir / "pointcloud.npz").unlink()
    code, doc = _check_json(dataset)
    assert code == 1
    wheres = {i["where"]: i["problem"] for i in doc["issues"] if i["level"] == "error"}
    assert wheres == {f"{CHAIR}/{model}/img_choy2016/002.jpg": "missing file",
                      f"{CHAIR}/{model}/pointcloud.npz": "missing file"}


def test_bad_key(dataset: Path) -> None:
    model, model_dir = _model(dataset, TABLE, 1)
    with np.load(model_dir / "points.npz") as data:
        occ = data["occupancies"]
    _rewrite_npz(model_dir / "points.npz", occupancies=None, occ=occ)
    result = runner.invoke(app, ["data", "check", str(dataset)])
    assert result.exit_code == 1
    assert f"{TABLE}/{model}/points.npz: missing key 'occupancies'" in result.stdout
    assert "1 error(s)" in result.stderr


def test_wrong_dtype(dataset: Path) -> None:
    model, model_dir = _model(dataset, CHAIR, 2)
    with np.load(model_dir / "pointcloud.npz") as data:
        normals = data["normals"].astype(np.float32)
    _rewrite_npz(model_dir / "pointcloud.npz", normals=normals)
    code, doc = _check_json(dataset)
    assert code == 1
    assert [(i["where"], i["problem"]) for i in doc["issues"]] == [
        (f"{CHAIR}/{model}/pointcloud.npz", "normals has dtype float32, expected float16")]


def test_wrong_shape_and_corrupt_npz(dataset: Path) -> None:
    model, model_dir = _model(dataset, CHAIR, 3)
    _rewrite_npz(model_dir / "img_choy2016" / "cameras.npz", world_mat_1=np.eye(3, dtype=np.float32))
    other, other_dir = _model(dataset, CHAIR, 4)
    (other_dir / "points.npz").write_bytes(b"PK\x03\x04 truncated")
    code, doc = _check_json(dataset)
    problems = {i["where"]: i["problem"] for i in doc["issues"]}
    assert code == 1
    assert problems[f"{CHAIR}/{model}/img_choy2016/cameras.npz"] == "world_mat_1 has shape (3, 3), expected (3, 4)"
    assert problems[f"{CHAIR}/{other}/points.npz"].startswith("corrupt npz")


def test_trailing_newline_and_missing_model(dataset: Path) -> None:
    path = dataset / TABLE / "test.lst"
    path.write_text(path.read_text() + "\n")
    val = dataset / CHAIR / "val.lst"
    val.write_text(val.read_text() + "\nghost")
    code, doc = _check_json(dataset)
    assert code == 1
    problems = {(i["where"], i["problem"]) for i in doc["issues"]}
    assert (f"{TABLE}/test.lst", "trailing newline (naive readers get an empty model id)") in problems
    assert (f"{CHAIR}/ghost", "listed in val.lst but the model folder is missing") in problems
    assert doc["errors"] == 2


def test_full_check_finds_bad_values(dataset: Path) -> None:
    model, model_dir = _model(dataset, TABLE, 0)
    with np.load(model_dir / "pointcloud.npz") as data:
        normals = data["normals"] * np.float16(2.0)
    _rewrite_npz(model_dir / "pointcloud.npz", normals=normals)
    assert check_dataset(dataset).ok
    report = check_dataset(dataset, full=True)
    assert [str(i) for i in report.errors] == [
        f"{TABLE}/{model}/pointcloud.npz: 2048 normals are not unit length"]


def test_missing_root_is_one_red_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "dataset folder does not exist" in result.stderr and "Traceback" not in result.output


def _meshes(folder: Path) -> Path:
    (folder / "chair").mkdir(parents=True)
    (folder / "gizmo").mkdir()
    trimesh.creation.icosphere(2, radius=0.4).export(folder / "chair" / "ball one.obj")
    trimesh.creation.box((1.0, 0.5, 0.3)).export(folder / "chair" / "box.stl")
    trimesh.creation.cylinder(0.3, 1.0).export(folder / "gizmo" / "cyl.ply")
    trimesh.creation.cone(0.3, 0.8).export(folder / "gizmo" / "cone.off")
    trimesh.creation.torus(0.3, 0.1).export(folder / "gizmo" / "ring.glb")
    (folder / "gizmo" / "broken.obj").write_text("v 0 0 0\n")
    return folder


SMALL = ["--views", "2", "--size", "32", "--points", "400"]


def test_build_cli(tmp_path: Path) -> None:
    meshes = _meshes(tmp_path / "meshes")
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "build", str(meshes), "-o", str(out), *SMALL, "--json"])
    assert result.exit_code == 1  # broken.obj failed, the rest was built
    doc = json.loads(result.stdout)
    assert (doc["built"], doc["failed"]) == (5, 1)
    assert doc["errors"][0]["model"] == "broken" and "broken.obj" in doc["errors"][0]["error"]
    assert "broken" in result.stderr
    meta = layout.read_metadata(out)
    gizmo = next(s for s, e in meta.items() if e["name"] == "gizmo")
    assert meta[CHAIR]["name"] == "chair" and layout.is_synset_id(gizmo)
    models = sorted(m for s in layout.SPLITS for m in layout.read_split(out, CHAIR, s))
    assert models == ["ball_one", "box"]
    assert check_dataset(out, full=True).ok

    (meshes / "gizmo" / "broken.obj").unlink()
    again = runner.invoke(app, ["data", "build", str(meshes), "-o", str(out), *SMALL, "--json"])
    assert again.exit_code == 0
    assert (json.loads(again.stdout)["built"], json.loads(again.stdout)["skipped"]) == (0, 5)


def test_build_flat_folder_needs_category(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    trimesh.creation.box((1.0, 0.5, 0.3)).export(flat / "b.obj")
    result = runner.invoke(app, ["data", "build", str(flat), "-o", str(tmp_path / "o"), *SMALL])
    assert result.exit_code == 1 and "--category" in result.stderr
    ok = runner.invoke(app, ["data", "build", str(flat), "-o", str(tmp_path / "o"), "--category", "table", *SMALL,
                             "--split", "0/0/1"])
    assert ok.exit_code == 0, ok.output
    assert layout.read_split(tmp_path / "o", TABLE, "test") == ["b"]
    bad = runner.invoke(app, ["data", "build", str(flat), "-o", str(tmp_path / "o"), "--split", "0.5/0.5"])
    assert bad.exit_code == 1 and "split" in bad.stderr
