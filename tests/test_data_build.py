"""Round trip: meshes generated here -> write_dataset -> files read back and checked against analytic answers."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import trimesh

from recon_cli.data import layout
from recon_cli.data.binvox import read_binvox
from recon_cli.data.build import ModelJob, normalize_mesh, write_dataset
from recon_cli.data.inside import _winding_exact, inside_mask, winding_number
from recon_cli.data.render import RenderOptions, render_image

SYNSET = "03001627"
N_POINTS = 20_000
N_VIEWS = 6

# original (un-normalised) shapes: analytic inside tests work in original coordinates
BOX_EXTENTS = np.array([2.0, 1.0, 1.2])
BOX_CENTRE = np.array([3.0, -1.0, 0.5])
TORUS_R, TORUS_r = 0.35, 0.15


def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=0.5)


def box() -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=BOX_EXTENTS)
    mesh.apply_translation(BOX_CENTRE)
    return mesh


def torus() -> trimesh.Trimesh:
    return trimesh.creation.torus(TORUS_R, TORUS_r, major_sections=96, minor_sections=48)


def open_box() -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=(1.0, 0.5, 0.6))
    mesh.update_faces(mesh.face_normals[:, 1] < 0.9)  # no top: not watertight
    mesh.remove_unreferenced_vertices()
    return mesh


SHAPES = {"sphere": sphere, "box": box, "torus": torus, "openbox": open_box}


def inside_sphere(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=1) < 0.5


def inside_box(p: np.ndarray) -> np.ndarray:
    return np.all(np.abs(p - BOX_CENTRE) < BOX_EXTENTS / 2, axis=1)


def inside_torus(p: np.ndarray) -> np.ndarray:  # trimesh's torus: symmetry axis z
    ring = np.hypot(p[:, 0], p[:, 1]) - TORUS_R
    return ring**2 + p[:, 2] ** 2 < TORUS_r**2


def inside_open_box(p: np.ndarray) -> np.ndarray:
    return np.all(np.abs(p) < np.array([0.5, 0.25, 0.3]), axis=1)


ANALYTIC = {"sphere": inside_sphere, "box": inside_box, "torus": inside_torus, "openbox": inside_open_box}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roundtrip")
    jobs = [ModelJob(SYNSET, name, functools.partial(fn), seed=i) for i, (name, fn) in enumerate(SHAPES.items())]
    report = write_dataset(root, jobs, names={SYNSET: "chair"}, render=RenderOptions(n_views=N_VIEWS),
                           n_points=N_POINTS)
    assert not report.failed
    return root


def _original(points: np.ndarray, model_dir: Path) -> np.ndarray:
    with np.load(model_dir / layout.POINTS_FILE) as data:
        return points * float(data["scale"]) + data["loc"]


def test_files_keys_dtypes(built: Path) -> None:
    model_dir = built / SYNSET / "box"
    with np.load(model_dir / "points.npz") as data:
        assert set(data.files) == {"points", "occupancies", "loc", "scale"}
        assert data["points"].shape == (N_POINTS, 3) and data["points"].dtype == np.float16
        assert data["occupancies"].dtype == np.uint8 and data["occupancies"].shape == (N_POINTS // 8,)
        np.testing.assert_allclose(data["loc"], BOX_CENTRE, atol=1e-6)
        assert float(data["scale"]) == pytest.approx(2.0)
        assert np.abs(data["points"]).max() <= 0.55
    with np.load(model_dir / "pointcloud.npz") as data:
        assert data["points"].dtype == np.float16 and data["normals"].dtype == np.float16
        assert data["points"].shape == data["normals"].shape == (N_POINTS, 3)
    with np.load(model_dir / "img_choy2016" / "cameras.npz") as data:
        assert sorted(data.files) == sorted([f"camera_mat_{i}" for i in range(N_VIEWS)]
                                            + [f"world_mat_{i}" for i in range(N_VIEWS)])
        assert data["camera_mat_0"].shape == (3, 3) and data["world_mat_0"].shape == (3, 4)
    assert layout.count_views(model_dir) == N_VIEWS
    assert not list(model_dir.rglob("*.part"))


@pytest.mark.parametrize("name", ["sphere", "box", "torus"])
def test_occupancy_matches_analytic(built: Path, name: str) -> None:
    model_dir = built / SYNSET / name
    points, occ = layout.load_occupancy(model_dir)
    truth = ANALYTIC[name](_original(points, model_dir))
    assert truth.mean() > 0.05  # the test is not trivial
    assert np.mean(occ == truth) >= 0.995


def test_open_box_interior_is_inside(built: Path) -> None:
    points, occ = layout.load_occupancy(built / SYNSET / "openbox")
    truth = inside_open_box(points)
    assert np.mean(occ == truth) >= 0.98


@pytest.mark.parametrize("name", ["sphere", "box"])
def test_normals_unit_and_analytic(built: Path, name: str) -> None:
    model_dir = built / SYNSET / name
    surface, normals = layout.load_pointcloud(model_dir)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=2e-3)
    if name == "sphere":
        expected = surface / np.linalg.norm(surface, axis=1, keepdims=True)
        assert np.all(np.abs(np.linalg.norm(surface, axis=1) - 0.5) < 0.01)
        assert np.min(np.sum(normals * expected, axis=1)) > 0.98
    else:
        half = BOX_EXTENTS / 2 / 2.0  # normalised half extents
        rel = np.abs(surface) / half
        axis = np.argmax(rel, axis=1)
        expected = np.zeros_like(surface)
        expected[np.arange(len(surface)), axis] = np.sign(surface[np.arange(len(surface)), axis])
        assert np.mean(np.sum(normals * expected, axis=1) > 0.999) > 0.995


def test_binvox(built: Path) -> None:
    vox, translate, scale = read_binvox(built / SYNSET / "sphere" / "model.binvox")
    assert vox.shape == (32, 32, 32) and translate == (-0.5, -0.5, -0.5) and scale == 1.0
    centres = (np.arange(32) + 0.5) / 32 - 0.5
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1)
    truth = np.linalg.norm(grid, axis=-1) < 0.5
    iou = (vox & truth).sum() / (vox | truth).sum()
    assert iou > 0.85 and vox[16, 16, 16] and not vox[0, 0, 0]


@pytest.mark.parametrize("name", ["sphere", "box", "torus", "openbox"])
def test_renders_centred_and_cameras_project_into_silhouette(built: Path, name: str) -> None:
    model_dir = built / SYNSET / name
    K, Rt = layout.load_cameras(model_dir)
    mesh, _, _ = normalize_mesh(SHAPES[name]())
    for view in range(N_VIEWS):
        image = np.asarray(layout.open_view(model_dir, view))
        assert image.shape == (137, 137, 3)
        assert image[0, 0].min() >= 250  # white background
        mask = image.min(axis=-1) < 235  # (H,W) object pixels
        assert 0.05 < mask.mean() < 0.9
        rows, cols = np.nonzero(mask)
        assert abs(rows.mean() - 68.5) < 14 and abs(cols.mean() - 68.5) < 14
        cam = mesh.vertices @ Rt[view, :, :3].T + Rt[view, :, 3]  # (N,3) camera frame
        assert np.all(cam[:, 2] > 0)
        uv = cam @ K[view].T
        uv = uv[:, :2] / uv[:, 2:]
        assert np.all((uv > 0) & (uv < 137))
        # every vertex falls on the silhouette (1-pixel tolerance for edges)
        grown = mask.copy()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                grown |= np.roll(np.roll(mask, dr, 0), dc, 1)
        col, row = np.floor(uv).astype(int).T
        assert grown[row, col].mean() >= 0.99


def test_render_image_matches_camera(built: Path) -> None:
    K, Rt = layout.load_cameras(built / SYNSET / "sphere")
    mesh, _, _ = normalize_mesh(sphere())
    image = render_image(mesh, K[0], Rt[0])
    stored = np.asarray(layout.open_view(built / SYNSET / "sphere", 0)).astype(int)
    assert np.abs(image.astype(int) - stored).mean() < 3.0  # only jpeg noise


def test_splits_and_metadata(built: Path) -> None:
    ids = [m for s in layout.SPLITS for m in layout.read_split(built, SYNSET, s)]
    assert sorted(ids) == sorted(SHAPES)
    for s in layout.SPLITS:
        assert not (built / SYNSET / f"{s}.lst").read_text().endswith("\n")
    assert layout.read_metadata(built) == {SYNSET: {"id": SYNSET, "name": "chair"}}


def test_resume_skips_finished_and_overwrite_rebuilds(built: Path) -> None:
    jobs = [ModelJob(SYNSET, "sphere", sphere, seed=0)]
    render = RenderOptions(n_views=N_VIEWS)
    again = write_dataset(built, jobs, names={SYNSET: "chair"}, render=render, n_points=N_POINTS)
    assert [r.skipped for r in again.results] == [True]
    seen = []
    redo = write_dataset(built, jobs, names={SYNSET: "chair"}, render=render, n_points=N_POINTS, overwrite=True,
                         on_progress=seen.append)
    assert [(r.ok, r.skipped, r.done, r.total) for r in seen] == [(True, False, 1, 1)]
    assert redo.n_built == 1


def test_failed_model_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.obj"
    bad.write_text("not a mesh")
    jobs = [ModelJob(SYNSET, "bad", bad, seed=0), ModelJob(SYNSET, "ok", functools.partial(sphere), seed=1)]
    report = write_dataset(tmp_path / "out", jobs, names={SYNSET: "chair"}, render=RenderOptions(n_views=1, size=32),
                           n_points=500)
    assert [r.model_id for r in report.failed] == ["bad"]
    assert "bad.obj" in report.failed[0].error
    listed = [m for s in layout.SPLITS for m in layout.read_split(tmp_path / "out", SYNSET, s)]
    assert listed == ["ok"]


def test_normalize_mesh_convention() -> None:
    mesh = box()
    norm, loc, scale = normalize_mesh(mesh)
    np.testing.assert_allclose(norm.bounds, [[-0.5, -0.25, -0.3], [0.5, 0.25, 0.3]], atol=1e-6)
    np.testing.assert_allclose(norm.vertices * scale + loc, mesh.vertices, atol=1e-5)


def test_winding_number_values() -> None:
    small = trimesh.creation.icosphere(subdivisions=2, radius=0.5)  # 320 faces: exact sum
    w = winding_number(small, np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.1, 0.2, -0.1]]))
    np.testing.assert_allclose(w, [1.0, 0.0, 1.0], atol=1e-4)
    mesh = sphere()  # 5120 faces: far clusters use the dipole approximation
    points = np.random.default_rng(0).uniform(-0.55, 0.55, (2000, 3))
    exact = _winding_exact(np.asarray(mesh.triangles), points)
    np.testing.assert_allclose(winding_number(mesh, points), exact, atol=0.02)
    np.testing.assert_array_equal(inside_mask(mesh, points), inside_mask(mesh, points, method="winding"))


def test_parallel_workers_match_serial(tmp_path: Path) -> None:
    paths = []
    for name, fn in (("a", sphere), ("b", torus)):
        paths.append(tmp_path / f"{name}.ply")
        fn().export(paths[-1])
    jobs = [ModelJob(SYNSET, p.stem, p, seed=i) for i, p in enumerate(paths)]
    render = RenderOptions(n_views=2, size=48)
    serial = write_dataset(tmp_path / "serial", jobs, names={SYNSET: "chair"}, render=render, n_points=800)
    parallel = write_dataset(tmp_path / "par", jobs, names={SYNSET: "chair"}, render=render, n_points=800, workers=2)
    assert not serial.failed and not parallel.failed and parallel.n_built == 2
    for p in paths:
        for rel in ("points.npz", "pointcloud.npz", "model.binvox"):
            a = (tmp_path / "serial" / SYNSET / p.stem / rel).read_bytes()
            assert a == (tmp_path / "par" / SYNSET / p.stem / rel).read_bytes()
