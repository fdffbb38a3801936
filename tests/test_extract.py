"""Extraction: MISE against dense grids, marching cubes convention, torch MC against PyMCubes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from scipy import ndimage

from recon_cli.extract import (
    dense_grid,
    grid_to_mesh,
    marching_cubes_pymcubes,
    marching_cubes_torch,
    mise,
    mise_batched,
    probability_to_logit,
    simplify,
    vertex_normals,
)
from recon_cli.extract.marching_cubes import CORNERS, triangle_table

RADIUS = 0.35


def sphere(points: np.ndarray) -> np.ndarray:
    """Signed 'logit': positive inside a sphere of radius RADIUS."""
    return (RADIUS - np.linalg.norm(points, axis=1)).astype(np.float32)


def torus(points: np.ndarray) -> np.ndarray:
    """Positive inside a torus (major radius 0.3, minor 0.1) around the y axis."""
    ring = np.sqrt(points[:, 0] ** 2 + points[:, 2] ** 2) - 0.3
    return (0.1 - np.sqrt(ring**2 + points[:, 1] ** 2)).astype(np.float32)


def shifted_sphere(points: np.ndarray) -> np.ndarray:
    return (0.2 - np.linalg.norm(points - np.array([0.1, -0.05, 0.2]), axis=1)).astype(np.float32)


def blobs(seed: int, n: int = 40) -> np.ndarray:
    """A smooth random field (n^3) with several closed components."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n, n)), 2.5)
    return field / field.std()


@pytest.mark.parametrize("field", [sphere, torus], ids=["sphere", "torus"])
def test_mise_sign_grid_equals_dense(field) -> None:
    result = mise(field, resolution0=32, upsampling_steps=2, level=0.0)
    dense = dense_grid(field, 128)
    assert result.values.shape == (129, 129, 129)
    assert np.array_equal(result.values > 0, dense > 0)
    assert result.n_evaluated < 0.1 * 129**3
    assert np.array_equal(result.values[::4, ::4, ::4], dense[::4, ::4, ::4])  # the coarse lattice is evaluated


def test_mise_with_threshold_level() -> None:
    level = probability_to_logit(0.2)  # the field here is a logit
    scaled = lambda p: 20.0 * sphere(p)  # noqa: E731
    result = mise(scaled, 16, 2, level)
    dense = dense_grid(scaled, 64)
    assert np.array_equal(result.values > level, dense > level)


def test_mise_batched_equals_single() -> None:
    fields = [sphere, torus, shifted_sphere]
    calls = []

    def eval_fn(queries):
        calls.append([len(q) for q in queries])
        return [f(q) if len(q) else np.zeros(0, np.float32) for f, q in zip(fields, queries)]

    batched = mise_batched(eval_fn, 3, 16, 2, 0.0)
    for f, res in zip(fields, batched):
        single = mise(f, 16, 2, 0.0)
        assert np.array_equal(res.values, single.values)
        assert res.n_evaluated == single.n_evaluated
    assert len(calls) == max(r.rounds for r in batched)  # one call per round for all shapes


def test_mise_empty_field_stops_after_coarse_level() -> None:
    result = mise(lambda p: -np.ones(len(p), np.float32), 8, 3, 0.0)
    assert result.n_evaluated == 9**3 and result.rounds == 1
    assert np.all(result.values == -1)


def test_probability_to_logit() -> None:
    assert probability_to_logit(0.5) == 0.0
    assert probability_to_logit(0.2) == pytest.approx(np.log(0.25))
    with pytest.raises(ValueError):
        probability_to_logit(1.0)


@pytest.mark.parametrize("backend", ["pymcubes", "torch"])
def test_sphere_pins_vertex_convention(backend: str) -> None:
    values = dense_grid(sphere, 64)
    mesh = grid_to_mesh(values, 0.0, backend=backend)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - RADIUS).max() < 2e-3  # a half-voxel shift (0.0086) would fail this
    assert abs(radii.mean() - RADIUS) < 5e-4
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward normals
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)


def test_padding_closes_meshes_and_keeps_box() -> None:
    full = np.ones((33, 33, 33), dtype=np.float32)  # everything inside: a box at the lattice boundary
    mesh = grid_to_mesh(full, 0.0)
    assert mesh.is_watertight
    assert np.allclose(mesh.bounds, [[-0.55] * 3, [0.55] * 3], atol=1e-5)
    assert len(grid_to_mesh(-full, 0.0).faces) == 0


def _match(field: np.ndarray) -> None:
    v1, f1 = marching_cubes_pymcubes(field, 0.0)
    v2, f2 = marching_cubes_torch(torch.from_numpy(field), 0.0)
    v2, f2 = v2.numpy(), f2.numpy()
    assert len(v1) == len(v2) and len(f1) == len(f2)
    o1, o2 = np.lexsort(v1.T), np.lexsort(v2.T)
    assert np.abs(v1[o1] - v2[o2]).max() < 1e-5
    mesh = trimesh.Trimesh(v2, f2, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(trimesh.Trimesh(v1, f1, process=False).volume, rel=1e-2)
    # every torch triangle uses vertices on one cube's edges: same vertex set per face as PyMCubes' mesh edges
    rank1, rank2 = np.empty(len(v1), int), np.empty(len(v2), int)
    rank1[o1], rank2[o2] = np.arange(len(v1)), np.arange(len(v2))
    assert set(np.unique(rank1[f1])) == set(np.unique(rank2[f2]))


def test_torch_mc_matches_pymcubes_sphere_torus() -> None:
    for field in (sphere, torus):
        _match(np.pad(dense_grid(field, 48), 1, constant_values=-1e6).astype(np.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_mc_matches_pymcubes_blobs(seed: int) -> None:
    _match(np.pad(blobs(seed), 1, constant_values=-1e6))


def test_torch_mc_every_case_matches_pymcubes() -> None:
    assert triangle_table().shape == (256, 5, 3)
    for case in range(256):
        field = -np.ones((2, 2, 2))
        for n in range(8):
            if case >> n & 1:
                field[tuple(CORNERS[n])] = 1.0
        v1, f1 = marching_cubes_pymcubes(field, 0.0)
        v2, f2 = marching_cubes_torch(torch.from_numpy(field), 0.0)
        assert (len(v1), len(f1)) == (len(v2), len(f2)), case


def test_torch_mc_float32_and_empty() -> None:
    values = torch.from_numpy(dense_grid(sphere, 32))
    mesh = grid_to_mesh(values, 0.0, backend="torch")
    ref = grid_to_mesh(values.numpy(), 0.0, backend="pymcubes")
    assert len(mesh.faces) == len(ref.faces)
    v, f = marching_cubes_torch(-torch.ones(5, 5, 5), 0.0)
    assert v.shape == (0, 3) and f.shape == (0, 3)


@pytest.mark.gpu
def test_torch_mc_cuda_matches_cpu() -> None:
    field = np.pad(blobs(3, 64), 1, constant_values=-1e6).astype(np.float32)
    vc, fc = marching_cubes_torch(torch.from_numpy(field), 0.0)
    vg, fg = marching_cubes_torch(torch.from_numpy(field).cuda(), 0.0)
    assert len(vc) == len(vg) and torch.equal(fc, fg.cpu())
    assert torch.allclose(vc, vg.cpu(), atol=1e-4)


def test_simplify_and_normals() -> None:
    mesh = grid_to_mesh(dense_grid(sphere, 64), 0.0)
    small = simplify(mesh, 500)
    assert 400 <= len(small.faces) <= 500
    normals = vertex_normals(mesh)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    assert np.min(np.sum(normals * radial, axis=1)) > 0.99  # outward


def test_mise_without_upsampling_is_the_dense_coarse_grid() -> None:
    result = mise(torus, 16, 0, 0.0)
    assert result.n_evaluated == 17**3 and result.rounds == 1
    assert np.array_equal(result.values, dense_grid(torus, 16))


def _blob_field(seed: int):
    """A smooth random field over the [-0.55, 0.55]^3 box (several components), as a function of points."""
    from scipy.interpolate import RegularGridInterpolator

    grid = blobs(seed, 24)
    axis = np.linspace(-0.56, 0.56, 24)
    interp = RegularGridInterpolator((axis, axis, axis), grid)
    return lambda p: (interp(p.astype(np.float64)) - 0.4).astype(np.float32)


@pytest.mark.parametrize("field_name", ["sphere", "torus", "blobs0", "blobs1", "noise"])
@pytest.mark.parametrize("res0,steps", [(16, 2), (8, 3), (5, 1), (4, 0)])
def test_sparse_mise_queries_exactly_what_the_dense_oracle_queries(field_name: str, res0: int, steps: int) -> None:
    """Round by round the same points in the same order, and the same field, as the old dense-array MISE."""
    from mise_reference import MISE as DenseMISE

    from recon_cli.extract.mise import MISE

    rng = np.random.default_rng(7)
    fields = {"sphere": sphere, "torus": torus, "blobs0": _blob_field(0), "blobs1": _blob_field(1),
              "noise": lambda p: rng.standard_normal(len(p)).astype(np.float32)}
    field = fields[field_name]
    new, old = MISE(res0, steps, 0.1), DenseMISE(res0, steps, 0.1)
    while not old.done:
        assert not new.done
        q_old, q_new = old.query(), new.query()
        assert np.array_equal(q_old, q_new)
        values = field(q_old)
        old.update(values)
        new.update(values)
    assert new.done and new.rounds == old.rounds and new.n_evaluated == old.n_evaluated
    assert np.array_equal(new.known, old.known)
    assert np.array_equal(new.to_dense(), old.to_dense())


def test_surface_corners_are_the_ends_of_the_edges_the_level_crosses() -> None:
    from recon_cli.extract.mise import surface_corners

    values = np.zeros((4, 4, 4), np.float32)
    values[1:3, 1:3, 1:3] = 1.0  # a 2x2x2 block above level 0.5
    flat = set(surface_corners(values, 0.5).tolist())
    inside = {int(i) for i in np.flatnonzero(values.reshape(-1) > 0.5)}
    assert inside <= flat  # every inside point has an outside neighbour
    assert np.ravel_multi_index((0, 1, 1), values.shape) in flat  # an outside end of a crossed edge
    assert np.ravel_multi_index((0, 0, 0), values.shape) not in flat  # a corner touches no crossed edge
    known = np.zeros_like(values, bool)
    known[1] = True
    assert set(surface_corners(values, 0.5, known).tolist()) == {i for i in flat if i // 16 == 1}
