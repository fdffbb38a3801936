"""Metrics on shapes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from recon_cli.metrics import (
    METRIC_KEYS,
    WORST_DISTANCE,
    Scores,
    iou,
    mean_scores,
    model_seed,
    sample_surface,
    score_mesh,
    surface_scores,
    worst_scores,
)

N = 100_000


def box(side: float, shift: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=(side, side, side))
    mesh.apply_translation(shift)
    return mesh


def box_inside(side: float, shift: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """Analytic inside test of an axis-aligned box (stand-in for the mesh inside test)."""

    def inside(_mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
        return np.all(np.abs(points - np.asarray(shift)) < side / 2, axis=1)

    return inside


def ground_truth(side: float, seed: int = 0) -> dict[str, np.ndarray]:
    """A points.npz/pointcloud.npz pair of a centred box, as the dataset stores it (float16)."""
    rng = np.random.default_rng(seed)
    occ_points = ((rng.random((N, 3)) - 0.5) * 1.1).astype(np.float16).astype(np.float32)
    occ = np.all(np.abs(occ_points) < side / 2, axis=1)
    pts, nrm = sample_surface(box(side), N, seed=seed + 1)
    return {
        "occ_points": occ_points, "occ": occ,
        "gt_points": pts.astype(np.float16), "gt_normals": nrm.astype(np.float16),
    }


def test_sample_surface_is_deterministic_area_weighted_with_face_normals() -> None:
    mesh = box(0.8)
    p1, n1 = sample_surface(mesh, 60_000, seed=3)
    p2, n2 = sample_surface(mesh, 60_000, seed=3)
    p3, _ = sample_surface(mesh, 60_000, seed=4)
    assert np.array_equal(p1, p2) and np.array_equal(n1, n2)
    assert not np.array_equal(p1, p3)
    # every point lies on the face whose normal it carries
    axis = np.argmax(np.abs(n1), axis=1)
    assert np.allclose(np.abs(n1).max(axis=1), 1.0)
    assert np.allclose(p1[np.arange(len(p1)), axis], 0.4 * np.sign(n1[np.arange(len(p1)), axis]))
    # area weighting: a 1x1x4 box has 16/18 of its area on the long sides
    long_box = trimesh.creation.box(extents=(0.25, 0.25, 1.0))
    _, n = sample_surface(long_box, 60_000, seed=0)
    assert abs(np.mean(np.abs(n[:, 2]) > 0.5) - 2 / 18) < 0.005


def test_identical_point_sets_score_perfectly() -> None:
    pts, nrm = sample_surface(box(1.0), N, seed=0)
    s = surface_scores(pts, nrm, pts, nrm)
    assert s["chamfer_l1"] == 0.0 and s["chamfer_l2"] == 0.0
    assert s["normal_consistency"] == pytest.approx(1.0, abs=1e-12)
    assert s["fscore_0_5"] == s["fscore_1"] == s["fscore_2"] == 1.0


def test_unit_cube_against_itself() -> None:
    # Independent 100k samples on each side: Chamfer is not exactly 0 but about the mean
    # nearest-sample spacing, 0.5 * sqrt(area / N) = 0.5 * sqrt(6 / 1e5) ~ 0.004.
    gt = ground_truth(1.0)
    scores, empty = score_mesh(box(1.0), seed=7, inside=box_inside(1.0), **gt)
    assert not empty
    assert scores.iou == 1.0
    assert scores.chamfer_l1 < 0.005 and scores.accuracy < 0.005 and scores.completeness < 0.005
    assert scores.chamfer_l2 < 3e-5
    assert scores.normal_consistency > 0.99  # only pairs straddling an edge differ
    assert scores.fscore_1 > 0.99 and scores.fscore_2 == 1.0


def test_shifted_cube() -> None:
    gt = ground_truth(0.8)
    shift = (0.1, 0.0, 0.0)
    scores, _ = score_mesh(box(0.8, shift), seed=1, inside=box_inside(0.8, shift), **gt)
    # IoU of two 0.8 boxes offset by 0.1 along x: 0.7 / 0.9
    assert scores.iou == pytest.approx(0.7 / 0.9, abs=0.01)
    # Hand-computed mean distance from one box surface to the other (equal by symmetry):
    # front face 0.1, back face E[min(0.1, u, v)] with u, v ~ U(0, 0.4) = 0.4 (1 - 0.75^3) / 3,
    # four side faces 0.05 over 1/8 of their length; six faces of equal area.
    back = 0.4 * (1 - 0.75**3) / 3
    expected = (0.1 + back + 4 * 0.05 / 8) / 6
    assert expected == pytest.approx(0.0336806, abs=1e-6)
    # sampled surfaces add about half the sample spacing on the coincident parts (~0.002)
    assert scores.accuracy == pytest.approx(expected, abs=0.003)
    assert scores.completeness == pytest.approx(expected, abs=0.003)
    assert scores.chamfer_l1 == pytest.approx(expected, abs=0.003)


def test_scaled_cube() -> None:
    gt = ground_truth(0.8)
    scores, _ = score_mesh(box(0.7), seed=2, inside=box_inside(0.7), **gt)
    assert scores.iou == pytest.approx((0.7 / 0.8) ** 3, abs=0.005)
    # every point of the 0.7 box is exactly 0.05 from the 0.8 box
    assert scores.accuracy == pytest.approx(0.05, abs=5e-4)
    assert scores.accuracy_l2 == pytest.approx(0.0025, abs=5e-5)
    # 0.8 -> 0.7: sqrt(0.05^2 + a^2 + b^2), a = max(|y| - 0.35, 0) with |y| ~ U(0, 0.4)
    t = (np.arange(4000) + 0.5) / 4000 * 0.4
    a = np.maximum(t - 0.35, 0.0)
    completeness = np.sqrt(0.0025 + a[:, None] ** 2 + a[None, :] ** 2).mean()
    assert completeness == pytest.approx(0.05184, abs=1e-5)
    assert scores.completeness == pytest.approx(completeness, abs=5e-4)
    # E[a^2] = P(a > 0) * 0.05^2 / 3 = 0.125 * 0.0025 / 3
    assert scores.completeness_l2 == pytest.approx(0.0025 + 2 * 0.125 * 0.0025 / 3, abs=5e-5)
    assert scores.chamfer_l1 == pytest.approx((0.05 + completeness) / 2, abs=5e-4)
    assert scores.fscore_2 == 0.0  # no predicted point within 0.02 of the ground truth


def test_empty_mesh_gets_worst_case() -> None:
    gt = ground_truth(0.8)
    for mesh in (None, trimesh.Trimesh(), trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=[[0, 1, 2]])):
        scores, empty = score_mesh(mesh, seed=0, inside=box_inside(0.8), **gt)
        assert empty
        assert scores == worst_scores()
    w = worst_scores()
    assert WORST_DISTANCE == pytest.approx(math.sqrt(3) * 1.1)
    assert (w.iou, w.normal_consistency, w.fscore_0_5, w.fscore_1, w.fscore_2) == (0, 0, 0, 0, 0)
    assert w.accuracy == w.completeness == w.chamfer_l1 == WORST_DISTANCE
    assert w.chamfer_l2 == pytest.approx(3 * 1.1**2)


def test_score_mesh_is_deterministic() -> None:
    gt = ground_truth(0.8)
    mesh = box(0.8)
    inside = box_inside(0.8)
    a, _ = score_mesh(mesh, seed=model_seed("03001627", "m1"), inside=inside, **gt)
    b, _ = score_mesh(mesh, seed=model_seed("03001627", "m1"), inside=inside, **gt)
    c, _ = score_mesh(mesh, seed=model_seed("03001627", "m2"), inside=inside, **gt)
    assert a == b
    assert a != c


def test_iou_and_means() -> None:
    assert iou(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)) == pytest.approx(1 / 3)
    assert iou(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    w = worst_scores()
    best = Scores(**{k: 1.0 for k in METRIC_KEYS})
    m = mean_scores([w, best])
    assert m is not None and m.iou == 0.5 and m.chamfer_l1 == pytest.approx((WORST_DISTANCE + 1) / 2)
    assert mean_scores([]) is None


def test_default_inside_test_on_a_non_watertight_prediction() -> None:
    """The default inside test (the dataset builder's) handles a box without its top face."""
    gt = ground_truth(0.8)
    mesh = box(0.8)
    open_box = trimesh.Trimesh(mesh.vertices, mesh.faces[mesh.face_normals[:, 1] < 0.5], process=False)
    assert len(open_box.faces) == 10 and not open_box.is_watertight
    scores, empty = score_mesh(open_box, seed=0, **gt)
    assert not empty
    assert scores.iou > 0.995
