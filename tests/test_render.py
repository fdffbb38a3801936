"""`recon render` and the preview library: pictures, turntables, contact sheets, reconstruct --preview."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.errors import InputError
from recon_cli.preview import View, auto_view, framed, preview_path, render_mesh, turntable_frames

runner = CliRunner()


def _save(mesh: trimesh.Trimesh, path: Path) -> Path:
    mesh.export(path)
    return path


def _foreground(image: Image.Image) -> np.ndarray:
    return (np.asarray(image.convert("RGB")) < 245).any(axis=-1)


def test_render_frames_any_scale_and_is_deterministic() -> None:
    box_mm = trimesh.creation.box((120.0, 30.0, 60.0))
    box_mm.apply_translation((500.0, 0.0, -40.0))
    unit = framed(box_mm)
    assert np.allclose(unit.bounds.mean(axis=0), 0) and np.isclose(np.ptp(unit.vertices, axis=0).max(), 1)
    a = render_mesh(box_mm, size=96)
    b = render_mesh(box_mm, size=96)
    assert a.size == (96, 96) and np.array_equal(np.asarray(a), np.asarray(b))
    fg = _foreground(a)
    assert 0.1 < fg.mean() < 0.8  # framed: the object fills a good part of the picture, not all of it
    shades = np.unique(np.asarray(a)[fg].reshape(-1, 3), axis=0)
    assert len(shades) >= 3  # three visible faces, differently lit


def test_views_differ_and_auto_view_is_three_quarter() -> None:
    slab = trimesh.creation.box((1.0, 0.6, 0.05))  # thin along z: edge-on from the side
    side = render_mesh(slab, size=64, view=View(90.0, 0.0))
    front = render_mesh(slab, size=64, view=View(0.0, 0.0))
    assert _foreground(front).sum() > 5 * _foreground(side).sum()
    view = auto_view(framed(slab))
    assert view.azimuth in (45.0, 315.0, 135.0, 225.0) and view.elevation == 25.0
    frames = turntable_frames(slab, frames=8, size=48, elevation=0.0)  # passes the edge-on views
    areas = [_foreground(f).sum() for f in frames]
    assert len(frames) == 8 and max(areas) > 3 * min(areas)


def test_empty_mesh_is_an_error() -> None:
    with pytest.raises(InputError, match="no faces"):
        render_mesh(trimesh.Trimesh())


def test_preview_path_never_overwrites_the_input(tmp_path: Path) -> None:
    assert preview_path(tmp_path / "a.obj") == tmp_path / "a.png"
    assert preview_path(tmp_path / "a.obj", avoid=[tmp_path / "a.png"]) == tmp_path / "a.preview.png"


def test_cli_picture_turntable_grid_and_errors(tmp_path: Path) -> None:
    box = _save(trimesh.creation.box((1, 2, 3)), tmp_path / "box.obj")
    ball = _save(trimesh.creation.icosphere(), tmp_path / "ball.stl")
    res = runner.invoke(app, ["render", str(box), "-o", str(tmp_path / "box.png"), "--size", "64",
                              "--turntable", str(tmp_path / "box.gif"), "--frames", "6", "--azimuth", "30"])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "box.png").size == (64, 64)
    gif = Image.open(tmp_path / "box.gif")
    assert gif.n_frames == 6
    res = runner.invoke(app, ["render", str(tmp_path), "--grid", "-o", str(tmp_path / "sheet.png"),
                              "--size", "48", "--columns", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["written"] == [str(tmp_path / "sheet.png")]
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size[0] == 48 and sheet.size[1] == 2 * (48 + 18)
    res = runner.invoke(app, ["render", str(box), str(tmp_path / "missing.obj"), "--out-dir", str(tmp_path / "o")])
    assert res.exit_code == 1 and "missing.obj: no such mesh file" in res.output
    assert (tmp_path / "o" / "box.png").is_file()
    assert runner.invoke(app, ["render", str(box)]).exit_code == 2
    assert runner.invoke(app, ["render", str(box), str(ball), "-o", str(tmp_path / "x.png")]).exit_code == 2
    res = runner.invoke(app, ["render", str(box), "--turntable", str(tmp_path / "x.mp4")])
    assert res.exit_code == 1 and "unsupported animation suffix" in res.output
