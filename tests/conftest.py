"""Shared fixtures. ``tiny_dataset`` is a small ShapeNet-layout dataset built once per session."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import trimesh

TINY_SYNSETS = {"03001627": "chair", "04379243": "table"}
TINY_PER_CATEGORY = 10
TINY_N_POINTS = 2048
TINY_N_VIEWS = 4


def make_ellipsoid(radii: tuple[float, float, float], subdivisions: int = 2) -> trimesh.Trimesh:
    """A watertight ellipsoid centred at the origin."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    mesh.apply_scale(radii)
    return mesh


def make_box(extents: tuple[float, float, float]) -> trimesh.Trimesh:
    """A watertight axis-aligned box centred at the origin."""
    return trimesh.creation.box(extents=extents)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny dataset in the ShapeNet layout (built once per test session).

    Content: ``metadata.yaml`` with two categories, 03001627 "chair" (10
    ellipsoids ``ell00``..``ell09``) and 04379243 "table" (10 boxes
    ``box00``..``box09``), each split 7 train / 1 val / 2 test (seed 0). Every
    model has all files of the standard layout, but with only 2048 occupancy
    points and 2048 surface points (instead of 100k) and 4 views (000..003.jpg,
    137x137, instead of 24). Do not modify it: it is shared; copy it
    (``shutil.copytree``) to plant defects.
    """
    from recon_cli.data.build import ModelJob, write_dataset
    from recon_cli.data.render import RenderOptions

    root = tmp_path_factory.mktemp("tiny_dataset")
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(TINY_PER_CATEGORY):
        radii = tuple(float(r) for r in rng.uniform(0.2, 0.5, 3))
        jobs.append(ModelJob("03001627", f"ell{i:02d}", functools.partial(make_ellipsoid, radii), seed=i))
    for i in range(TINY_PER_CATEGORY):
        extents = tuple(float(e) for e in rng.uniform(0.3, 1.0, 3))
        jobs.append(ModelJob("04379243", f"box{i:02d}", functools.partial(make_box, extents), seed=100 + i))
    report = write_dataset(root, jobs, names=dict(TINY_SYNSETS), seed=0, workers=1,
                           render=RenderOptions(n_views=TINY_N_VIEWS), n_points=TINY_N_POINTS)
    assert not report.failed, report.failed
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids spin-waiting (10x faster)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
