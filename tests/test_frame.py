"""The canonical frame (+y up, front +x) of procedural and built datasets, and the synset ids."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import trimesh

from recon_cli.data.build import build_from_folder, scan_folder
from recon_cli.data.categories import NAMES, resolve_category
from recon_cli.data.frame import frame_rotation, resolve_frame, to_canonical
from recon_cli.data.layout import category_synset, read_metadata
from recon_cli.data.render import RenderOptions
from recon_cli.data.synth import family_of, generate
from recon_cli.errors import InputError


def _top(mesh: trimesh.Trimesh, share: float = 0.03) -> np.ndarray:
    v = mesh.vertices
    return v[v[:, 1] >= np.quantile(v[:, 1], 1 - share)]


def test_shapenet_synset_ids() -> None:
    assert NAMES["table"] == "04379243" and NAMES["rifle"] == "04090263"


def test_old_wrong_ids_still_resolve_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="recon"):
        assert resolve_category("04379232") == "04379243"
        assert category_synset("04090256") == ("04090263", "rifle")
        (tmp_path / "04379232").mkdir()
        assert read_metadata(tmp_path)["04379232"]["name"] == "table"
    assert "04379232" in caplog.text and "04379243" in caplog.text and "04090256" in caplog.text


def test_synth_bench_back_rest_at_minus_x_and_long_side_along_z() -> None:
    park = [s for s in range(40) if family_of("bench", s) == "park"][:3]
    assert park
    for seed in park:
        bench = generate("bench", seed)
        assert _top(bench)[:, 0].mean() < bench.bounds.mean(0)[0] - 0.1 * bench.extents[0]
    for seed in range(8):
        for category in ("bench", "table", "sofa"):
            mesh = generate(category, seed)
            assert mesh.extents[2] >= mesh.extents[0] - 1e-6, (category, seed)  # round tables: equal


@pytest.mark.parametrize("category", ["chair", "sofa"])
def test_synth_back_rest_at_minus_x(category: str) -> None:
    for seed in range(6):
        mesh = generate(category, seed)
        if family_of(category, seed) == "stool":
            continue
        assert _top(mesh)[:, 0].mean() < mesh.bounds.mean(0)[0], (category, seed)


def test_synth_vehicles_longest_along_x() -> None:
    for seed in range(8):
        for category in ("car", "rifle"):
            ext = generate(category, seed).extents
            assert ext[0] == ext.max(), (category, seed, ext)


def test_synth_screen_faces_plus_x() -> None:
    disp = generate("display", 2)
    dark = disp.visual.face_colors[:, :3].astype(int).sum(1) < 120
    n, area = disp.face_normals[dark], disp.area_faces[dark]
    assert area[n[:, 0] > 0.9].sum() > 5 * area[np.abs(n[:, 2]) > 0.9].sum()


def test_frame_rotation_conventions() -> None:
    assert np.allclose(frame_rotation("+y", "+x"), np.eye(3))
    R = resolve_frame("shapenet-v2")  # (x, y, z)_v1 = (-z, y, x)_v2
    assert np.allclose(R @ [1.0, 2.0, 3.0], [-3.0, 2.0, 1.0])
    R = resolve_frame(up="+z", front="-y")   # a z-up CAD file facing -y
    assert np.allclose(R @ [0, 0, 1], [0, 1, 0]) and np.allclose(R @ [0, -1, 0], [1, 0, 0])
    assert np.isclose(np.linalg.det(R), 1.0)
    with pytest.raises(InputError, match="different axes"):
        frame_rotation("+y", "-y")
    with pytest.raises(InputError, match="bad axis"):
        frame_rotation("+w", "+x")
    with pytest.raises(InputError, match="unknown frame"):
        resolve_frame("blender")


def test_build_turns_meshes_into_the_canonical_frame(tmp_path: Path) -> None:
    # a "car" 4 long along z (front +z, as a Y-up exporter might write it)
    box = trimesh.creation.box(extents=(2.0, 1.0, 4.0))
    (tmp_path / "in").mkdir()
    box.export(tmp_path / "in" / "car1.obj")
    jobs, _ = scan_folder(tmp_path / "in", category="car", rotation=resolve_frame(front="+z"))
    assert np.allclose(to_canonical(box, jobs[0].rotation).extents, (4.0, 1.0, 2.0))
    report = build_from_folder(tmp_path / "in", tmp_path / "out", category="car", rotation=resolve_frame(front="+z"),
                               n_points=2000, render=RenderOptions(n_views=1, size=32))
    assert report.n_built == 1
    cloud = np.load(tmp_path / "out" / "02958343" / "car1" / "pointcloud.npz")["points"].astype(float)
    ext = cloud.max(0) - cloud.min(0)
    assert np.isclose(ext[0], 1.0, atol=0.02) and np.isclose(ext[2], 0.5, atol=0.02)
