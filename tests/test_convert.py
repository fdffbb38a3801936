"""`recon convert`, `recon info` and recon_cli.meshops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from recon_cli import meshops
from recon_cli.cli.app import app
from recon_cli.errors import InputError
from recon_cli.io.mesh import EXPORTERS, load_mesh, save_mesh

runner = CliRunner()


def _shape() -> trimesh.Trimesh:
    """A closed, asymmetric test shape: a stretched icosphere off the origin (80 faces)."""
    mesh = trimesh.creation.icosphere(subdivisions=1)
    mesh.apply_scale((0.2, 0.4, 0.3))
    mesh.apply_translation((0.05, -0.1, 0.02))
    return mesh


def _box(tmp_path: Path, name: str = "box.obj", extents: tuple[float, float, float] = (1.0, 2.0, 3.0)) -> Path:
    return save_mesh(trimesh.creation.box(extents=extents), tmp_path / name)


def _sorted_vertices(mesh: trimesh.Trimesh) -> np.ndarray:
    v = np.asarray(meshops._welded(mesh).vertices)
    return v[np.lexsort(v.T[::-1])]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_exporter_round_trips(tmp_path: Path, fmt: str) -> None:
    mesh = _shape()
    path = save_mesh(mesh, tmp_path / f"m{meshops.FORMAT_SUFFIX[fmt]}", fmt=fmt)
    back = load_mesh(path)
    assert len(back.faces) == 80
    assert len(meshops._welded(back).vertices) == 42
    np.testing.assert_allclose(_sorted_vertices(back), _sorted_vertices(mesh), atol=1e-6)
    assert meshops.mesh_report(back)["watertight"] is True
    assert meshops.mesh_report(back)["volume"] == pytest.approx(mesh.volume, rel=1e-5)


def test_ascii_and_binary_stl_differ_on_disk(tmp_path: Path) -> None:
    src = _box(tmp_path)
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "a.stl"), "--ascii"]).exit_code == 0
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "b.stl")]).exit_code == 0
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "c.stl"), "--format", "stl_ascii"]).exit_code == 0
    assert (tmp_path / "a.stl").read_bytes().startswith(b"solid")
    assert (tmp_path / "c.stl").read_bytes().startswith(b"solid")
    assert len((tmp_path / "b.stl").read_bytes()) == 84 + 50 * 12  # binary STL: header + 12 triangles
    assert len(load_mesh(tmp_path / "a.stl").faces) == 12


# --------------------------------------------------------------------------- sizes and units


@pytest.mark.parametrize(("text", "mm"), [
    ("120mm", 120.0), ("12cm", 120.0), ("0.12m", 120.0), ("2in", 50.8), ("120", 120.0), ("7.5 MM", 7.5),
    ("1e2mm", 100.0),
])
def test_parse_size(text: str, mm: float) -> None:
    assert meshops.parse_size(text).mm == pytest.approx(mm)


@pytest.mark.parametrize("text", ["", "abc", "-5mm", "0mm", "12furlong", "mm", "1.2.3cm"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InputError, match="bad size"):
        meshops.parse_size(text)


@pytest.mark.parametrize(("size", "suffix", "longest"), [
    ("120mm", ".stl", 120.0), ("12cm", ".obj", 120.0), ("2in", ".ply", 50.8), ("12cm", ".glb", 0.12),
])
def test_size_is_written_in_the_output_unit(tmp_path: Path, size: str, suffix: str, longest: float) -> None:
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), str(out), "--size", size])
    assert result.exit_code == 0, result.output
    extents = load_mesh(out).extents
    np.testing.assert_allclose(extents, np.array([1.0, 2.0, 3.0]) * longest / 3.0, rtol=1e-6)


def test_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), str(tmp_path / "o.stl"), "--size", "12furlong"])
    assert result.exit_code == 2
    assert "bad size" in result.stderr


# --------------------------------------------------------------------------- up axis, simplify, repair


def test_up_z_turns_plus_y_into_plus_z(tmp_path: Path) -> None:
    mesh = trimesh.Trimesh(vertices=[[0, 0, 0], [0, 1, 0], [0.5, 0, 0.25]], faces=[[0, 1, 2]])
    save_mesh(mesh, tmp_path / "tri.obj")
    result = runner.invoke(app, ["convert", str(tmp_path / "tri.obj"), str(tmp_path / "tri.ply"), "--up", "z"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(load_mesh(tmp_path / "tri.ply").vertices,
                               [[0, 0, 0], [0, 0, 1], [0.5, -0.25, 0]], atol=1e-12)


def test_up_rejects_other_axes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), str(tmp_path / "o.stl"), "--up", "x"])
    assert result.exit_code == 2


def test_simplify_reaches_the_face_count(tmp_path: Path) -> None:
    save_mesh(trimesh.creation.icosphere(subdivisions=4), tmp_path / "s.ply")  # 5120 faces
    result = runner.invoke(app, ["convert", str(tmp_path / "s.ply"), str(tmp_path / "o.obj"),
                                 "--simplify", "500", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["before"]["faces"] == 5120
    assert doc["after"]["faces"] == 500
    assert doc["operations"] == ["simplify:500"]
    assert len(load_mesh(tmp_path / "o.obj").faces) == 500


def _broken_box() -> trimesh.Trimesh:
    """A unit box as a triangle soup: one face missing, one flipped, one duplicated, one degenerate."""
    box = trimesh.creation.box()
    faces = box.faces[1:].copy()                      # a 3-edge hole
    faces[0] = faces[0][::-1]                         # inconsistent winding
    faces = np.vstack([faces, faces[3:4], [[0, 0, 1]]])  # duplicate + degenerate
    tri = box.vertices[faces].reshape(-1, 3)           # unmerged soup
    return trimesh.Trimesh(vertices=tri, faces=np.arange(len(tri)).reshape(-1, 3), process=False)


def test_repair_closes_and_orients_a_broken_box(tmp_path: Path) -> None:
    save_mesh(_broken_box(), tmp_path / "broken.obj")
    result = runner.invoke(app, ["convert", str(tmp_path / "broken.obj"), str(tmp_path / "fixed.stl"),
                                 "--repair", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    before, after = doc["before"], doc["after"]
    assert (before["faces"], before["watertight"], before["volume"]) == (13, False, None)
    assert (before["duplicate_faces"], before["degenerate_faces"]) == (1, 1)
    assert (after["faces"], after["vertices"], after["watertight"]) == (12, 8, True)
    assert after["winding_consistent"] is True
    assert after["volume"] == pytest.approx(1.0)
    assert (after["duplicate_faces"], after["degenerate_faces"]) == (0, 0)
    fixed = load_mesh(tmp_path / "fixed.stl")
    assert meshops.mesh_report(fixed)["volume"] == pytest.approx(1.0)


def test_repair_report_is_printed_without_json(tmp_path: Path) -> None:
    save_mesh(_broken_box(), tmp_path / "broken.obj")
    result = runner.invoke(app, ["convert", str(tmp_path / "broken.obj"), str(tmp_path / "fixed.stl"), "--repair"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "watertight" in result.stderr and "before" in result.stderr and "after" in result.stderr


def test_repair_inverts_an_inside_out_mesh() -> None:
    box = trimesh.creation.box()
    inside_out = trimesh.Trimesh(vertices=box.vertices, faces=box.faces[:, ::-1], process=False)
    assert inside_out.volume == pytest.approx(-1.0)
    assert meshops.repair_mesh(inside_out).volume == pytest.approx(1.0)


# --------------------------------------------------------------------------- info


def test_info_json_report(tmp_path: Path) -> None:
    src = save_mesh(trimesh.creation.box(extents=(1.0, 2.0, 3.0)), tmp_path / "box.stl")
    result = runner.invoke(app, ["info", str(src), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["path"] == str(src) and doc["format"] == "stl"
    assert (doc["faces"], doc["vertices"], doc["unique_vertices"]) == (12, 36, 8)  # STL: triangle soup
    assert (doc["watertight"], doc["bodies"], doc["euler_number"]) == (True, 1, 2)
    assert doc["volume"] == pytest.approx(6.0)
    assert doc["area"] == pytest.approx(22.0)
    assert doc["bounds"] == [[-0.5, -1.0, -1.5], [0.5, 1.0, 1.5]]
    assert doc["extents"] == [1.0, 2.0, 3.0]


def test_info_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(_box(tmp_path))])
    assert result.exit_code == 0
    assert "watertight" in result.stdout and "yes" in result.stdout and "12" in result.stdout


# --------------------------------------------------------------------------- bad files


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.stl"
    save_mesh(trimesh.creation.box(), good)
    glb = save_mesh(trimesh.creation.box(), tmp_path / "good.glb")
    files = {
        "not_a_mesh": tmp_path / "notes.obj", "truncated_stl": tmp_path / "cut.stl",
        "truncated_glb": tmp_path / "cut.glb", "empty": tmp_path / "empty.ply",
        "unknown_suffix": tmp_path / "mesh.xyz", "missing": tmp_path / "nothere.obj",
    }
    files["not_a_mesh"].write_text("this is a shopping list\nnot a mesh\n")
    files["truncated_stl"].write_bytes(good.read_bytes()[:300])
    files["truncated_glb"].write_bytes(glb.read_bytes()[:300])
    files["empty"].write_bytes(b"")
    files["unknown_suffix"].write_text("v 0 0 0\n")
    return files


@pytest.mark.parametrize("kind", ["not_a_mesh", "truncated_stl", "truncated_glb", "empty", "unknown_suffix",
                                  "missing"])
@pytest.mark.parametrize("command", ["info", "convert"])
def test_bad_file_gives_one_line_naming_it(tmp_path: Path, kind: str, command: str) -> None:
    bad = _bad_files(tmp_path)[kind]
    args = ["info", str(bad)] if command == "info" else ["convert", str(bad), str(tmp_path / "out.obj")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.obj").exists()


def test_unknown_output_suffix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), str(tmp_path / "out.xyz")])
    assert result.exit_code == 1
    assert "out.xyz" in result.stderr and "suffix" in result.stderr


def test_unknown_format_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), str(tmp_path / "o.stl"), "--format", "fbx"])
    assert result.exit_code == 1
    assert "unknown mesh format 'fbx'" in result.stderr


# --------------------------------------------------------------------------- batch


def test_batch_folder_continues_past_bad_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    save_mesh(trimesh.creation.box(), src / "a.obj")
    save_mesh(_shape(), src / "b.ply")
    (src / "c.off").write_text("garbage\n")
    (src / "readme.txt").write_text("skipped: not a mesh suffix")
    result = runner.invoke(app, ["convert", str(src), "--out-dir", str(tmp_path / "out"), "--format", "stl"])
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.stl", "b.stl"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(src / "c.off") in errors[0]
    assert "2 converted, 1 failed" in result.stderr
    assert len(load_mesh(tmp_path / "out" / "b.stl").faces) == 80


def test_batch_json_and_success(tmp_path: Path) -> None:
    a = _box(tmp_path, "a.obj")
    b = save_mesh(_shape(), tmp_path / "b.off")
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(a), str(b), "-O", str(out), "-f", "glb", "--size", "50mm", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["converted"], doc["failed"]) == (2, 0)
    assert [r["output"] for r in doc["results"]] == [str(out / "a.glb"), str(out / "b.glb")]
    assert doc["results"][0]["after"]["unit"] == "m"
    assert max(load_mesh(out / "a.glb").extents) == pytest.approx(0.05)


def test_batch_name_clash_fails_the_second(tmp_path: Path) -> None:
    a = _box(tmp_path, "same.obj")
    b = save_mesh(_shape(), tmp_path / "same.ply")
    result = runner.invoke(app, ["convert", str(a), str(b), "-O", str(tmp_path / "out"), "-f", "stl"])
    assert result.exit_code == 1
    assert "already used" in result.stderr and str(b) in result.stderr
    assert len(load_mesh(tmp_path / "out" / "same.stl").faces) == 12


def test_batch_needs_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(_box(tmp_path)), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 2


def test_folder_without_out_dir_is_a_usage_error(tmp_path: Path) -> None:
    _box(tmp_path)
    assert runner.invoke(app, ["convert", str(tmp_path), str(tmp_path / "x.stl")]).exit_code == 2
    assert runner.invoke(app, ["convert", str(tmp_path / "box.obj")]).exit_code == 2


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["convert", str(tmp_path / "empty"), "-O", str(tmp_path / "o"), "-f", "stl"])
    assert result.exit_code == 1
    assert "no mesh files" in result.stderr


def test_obj_writer_round_trips_and_keeps_colours(tmp_path: Path) -> None:
    """recon's own OBJ writer (plain meshes) reads back exactly; coloured meshes keep their colours."""
    import numpy as np
    import trimesh

    from recon_cli.io.mesh import save_mesh

    mesh = trimesh.creation.icosphere(subdivisions=2)
    mesh.vertices = np.asarray(mesh.vertices) * [0.3, -0.2, 0.123456789]
    save_mesh(mesh, tmp_path / "plain.obj")
    text = (tmp_path / "plain.obj").read_text()
    assert text.count("\nv ") == len(mesh.vertices) and text.count("\nf ") == len(mesh.faces)
    back = load_mesh(tmp_path / "plain.obj")
    assert np.array_equal(back.faces, mesh.faces)
    assert np.abs(back.vertices - mesh.vertices).max() <= 5e-9
    coloured = trimesh.creation.box()
    coloured.visual.vertex_colors = [200, 10, 10, 255]
    save_mesh(coloured, tmp_path / "coloured.obj")
    again = trimesh.load(tmp_path / "coloured.obj", process=False)
    assert np.array_equal(np.asarray(again.visual.vertex_colors)[:, :3], np.tile([200, 10, 10], (8, 1)))
