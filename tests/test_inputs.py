"""Input expansion (files, folders, globs, --recursive) and output planning (mirroring, clashes, escapes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recon_cli.errors import InputError
from recon_cli.io.inputs import expand_inputs, output_format, plan_jobs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for rel in ["a.png", "b.JPG", "notes.txt", ".hidden.png", "sub/c.png", "sub/deeper/d.webp"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def _names(items) -> list[str]:
    return [it.path.name for it in items]


def test_folder_flat_and_recursive(tree: Path) -> None:
    assert _names(expand_inputs([tree])) == ["a.png", "b.JPG"]
    assert _names(expand_inputs([tree], recursive=True)) == ["a.png", "b.JPG", "c.png", "d.webp"]


def test_explicit_file_taken_whatever_its_suffix(tree: Path) -> None:
    items = expand_inputs([tree / "notes.txt", tree / "a.png", tree / "a.png"])  # duplicate dropped
    assert _names(items) == ["notes.txt", "a.png"] and all(it.error is None for it in items)


def test_globs_and_missing(tree: Path) -> None:
    # like the shell: a matched folder counts as a folder input (its images, not its subfolders')
    assert _names(expand_inputs([str(tree / "*")])) == ["a.png", "b.JPG", "c.png"]
    assert _names(expand_inputs([str(tree / "*.png")])) == ["a.png"]
    assert _names(expand_inputs([str(tree / "**" / "*.png")], recursive=True)) == ["a.png", "c.png"]
    items = expand_inputs([str(tree / "*.bmp"), tree / "missing.png"])
    assert [it.error for it in items] == ["no files match this pattern", "no such file or folder"]


def test_out_dir_mirrors_subfolders(tree: Path, tmp_path: Path) -> None:
    paths = [it.path for it in expand_inputs([tree], recursive=True)]
    jobs = plan_jobs(paths, out_dir=tmp_path / "out", fmt="ply")
    rel = [str(j.output.relative_to(tmp_path / "out")) for j in jobs]
    assert rel == ["a.ply", "b.ply", os.path.join("sub", "c.ply"), os.path.join("sub", "deeper", "d.ply")]
    assert {j.fmt for j in jobs} == {"ply"} and all(j.error is None for j in jobs)
    assert jobs[0].sidecar("stage1", ".ply").name == "a.stage1.ply"


def test_no_out_dir_writes_next_to_inputs(tree: Path) -> None:
    (job,) = plan_jobs([tree / "sub" / "c.png"])
    assert job.output == tree / "sub" / "c.obj" and job.fmt == "obj"


def test_clashing_names_get_the_input_suffix(tmp_path: Path) -> None:
    jobs = plan_jobs([tmp_path / "a.png", tmp_path / "a.jpg", tmp_path / "b.png"], out_dir=tmp_path / "o")
    assert [j.output.name for j in jobs] == ["a_png.obj", "a_jpg.obj", "b.obj"]


def test_single_output_and_format_rules(tmp_path: Path) -> None:
    (job,) = plan_jobs([tmp_path / "a.png"], output=tmp_path / "mesh.stl")
    assert job.output == tmp_path / "mesh.stl" and job.fmt == "stl"
    (job,) = plan_jobs([tmp_path / "a.png"], output=tmp_path / "mesh", fmt="off")
    assert job.output == tmp_path / "mesh.off" and job.fmt == "off"
    assert output_format(None, None) == "obj" and output_format(Path("x.GLB"), None) == "glb"
    with pytest.raises(InputError, match="conflicts"):
        output_format(Path("x.obj"), "ply")
    with pytest.raises(InputError, match="suffix '.mesh'"):
        output_format(Path("x.mesh"), None)
    with pytest.raises(InputError, match="use --out-dir"):
        plan_jobs([tmp_path / "a.png", tmp_path / "b.png"], output=tmp_path / "x.obj")


def test_symlinked_subfolder_escaping_out_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "sub")
    jobs = plan_jobs([tmp_path / "in" / "a.png", tmp_path / "in" / "sub" / "b.png"], out_dir=out)
    assert jobs[0].error is None
    assert jobs[1].error is not None and "leaves the output folder" in jobs[1].error
