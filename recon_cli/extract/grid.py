"""Lattice helpers shared by MISE, dense evaluation and marching cubes.

Point ``p`` (integer index 0..R on each axis) of a lattice with resolution R
maps to ``x = box * (p / R - 0.5)`` with ``box = 1 + padding`` (1.1 by default),
so the lattice spans [-0.55, 0.55]^3.
"""

from __future__ import annotations

import numpy as np

#: Default padding around the unit cube (query points live in [-0.55, 0.55]^3).
PADDING = 0.1


def box_size(padding: float = PADDING) -> float:
    """Side of the cube the lattice spans."""
    return 1.0 + padding


def index_to_world(index: np.ndarray, resolution: int, *, padding: float = PADDING) -> np.ndarray:
    """Lattice indices (..., 3) (integer or fractional) -> world coordinates (..., 3) float."""
    return box_size(padding) * (np.asarray(index, dtype=np.float64) / resolution - 0.5)


def lattice_points(resolution: int, *, padding: float = PADDING) -> np.ndarray:
    """All (R+1)^3 lattice points in world coordinates, C order over (i, j, k): (M, 3) float32."""
    axis = index_to_world(np.arange(resolution + 1), resolution, padding=padding)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3).astype(np.float32)


def final_resolution(resolution0: int, upsampling_steps: int) -> int:
    """Number of voxels per side of the finest lattice (R = resolution0 * 2**steps)."""
    return resolution0 * 2**upsampling_steps


def probability_to_logit(threshold: float) -> float:
    """Convert a probability threshold in (0, 1) to the logit the decoder predicts."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    return float(np.log(threshold) - np.log1p(-threshold))
