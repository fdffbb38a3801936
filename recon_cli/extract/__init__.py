"""Mesh extraction: MISE, marching cubes (PyMCubes / torch), grid helpers and post-processing.

The code here knows nothing about models: it takes functions from points to logits.
"""

from __future__ import annotations

from recon_cli.extract.grid import PADDING, final_resolution, lattice_points, probability_to_logit
from recon_cli.extract.marching_cubes import marching_cubes, marching_cubes_pymcubes, marching_cubes_torch
from recon_cli.extract.mise import MISE, MiseResult, dense_grid, mise, mise_batched
from recon_cli.extract.postprocess import empty_mesh, grid_to_mesh, simplify, vertex_normals

__all__ = [
    "MISE",
    "PADDING",
    "MiseResult",
    "dense_grid",
    "empty_mesh",
    "final_resolution",
    "grid_to_mesh",
    "lattice_points",
    "marching_cubes",
    "marching_cubes_pymcubes",
    "marching_cubes_torch",
    "mise",
    "mise_batched",
    "probability_to_logit",
    "simplify",
    "vertex_normals",
]
