"""The dense-array MISE that recon shipped before the sparse bookkeeping (kept as the tests' oracle).

The library's :mod:`recon_cli.extract.mise` must query exactly the same points,
round by round, and give the same field. This file is frozen: do not edit it
to make a test pass.

Multiresolution iso-surface extraction (MISE, Mescheder et al. 2019), vectorised.

Start with the (resolution0 + 1)^3 corner lattice; each round evaluates only
points whose value is unknown; a voxel is subdivided when the known values on
its (closed) box lie on both sides of the level; rounds go on until nothing new
is queried. Lattice point p of the finest lattice (R = resolution0 * 2**steps)
maps to x = box * (p / R - 0.5) (see :mod:`recon_cli.extract.grid`).

All bookkeeping is array work (max pooling over the finest lattice, no Python
loop over voxels). The field to extract is a function of points: ``eval_fn``
maps an (N, 3) float32 array to N logits (:func:`mise`), or, for several shapes
advanced together, a list of per-shape arrays to a list of logits
(:func:`mise_batched`): each round then makes one call over all shapes' points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from recon_cli.extract.grid import PADDING, box_size, final_resolution

EvalFn = Callable[[np.ndarray], np.ndarray]
BatchedEvalFn = Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


@dataclass
class MiseResult:
    """Dense (R+1)^3 float32 field (unknown points filled by trilinear interpolation)."""

    values: np.ndarray
    n_evaluated: int
    rounds: int


class MISE:
    """State of one shape's extraction: call :meth:`query`, evaluate, :meth:`update`, repeat.

    The bookkeeping is numpy (single-threaded, so it does not fight the model's
    thread pool for the cores); only the model evaluation is parallel.
    """

    def __init__(self, resolution0: int, upsampling_steps: int, level: float, *, padding: float = PADDING) -> None:
        if resolution0 < 1 or upsampling_steps < 0:
            raise ValueError("resolution0 must be >= 1 and upsampling_steps >= 0")
        self.resolution0 = resolution0
        self.steps = upsampling_steps
        self.level = float(level)
        self.padding = padding
        self.resolution = final_resolution(resolution0, upsampling_steps)
        n = self.resolution + 1
        self.values = np.zeros((n, n, n), dtype=np.float32)
        # known points, split by side of the level
        self.inside = np.zeros((n, n, n), dtype=bool)
        self.outside = np.zeros((n, n, n), dtype=bool)
        self.unknown = np.ones((n, n, n), dtype=bool)
        self.split = [np.zeros((self._res(l),) * 3, dtype=bool) for l in range(self.steps)]
        self.exists = [np.zeros((self._res(l),) * 3, dtype=bool) for l in range(self.steps + 1)]
        self.exists[0][...] = True
        axis = np.arange(0, n, self._stride(0))
        self._pending = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # (M, 3), C order
        self.n_evaluated = 0
        self.rounds = 0

    def _res(self, level: int) -> int:
        return self.resolution0 * 2**level

    def _stride(self, level: int) -> int:
        return 2 ** (self.steps - level)

    @property
    def known(self) -> np.ndarray:
        """(R+1)^3 bool: which lattice points have been evaluated."""
        return ~self.unknown

    @property
    def done(self) -> bool:
        """True once nothing is left to query."""
        return len(self._pending) == 0

    def query(self) -> np.ndarray:
        """World coordinates (M, 3) float32 of the points to evaluate next (empty when done)."""
        return (box_size(self.padding) * (self._pending / self.resolution - 0.5)).astype(np.float32)

    def update(self, logits: np.ndarray) -> None:
        """Store the values of the last query, then subdivide until new points are needed."""
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if len(logits) != len(self._pending):
            raise ValueError(f"expected {len(self._pending)} values, got {len(logits)}")
        idx = tuple(self._pending.T)
        self.values[idx] = logits
        above = logits > self.level
        self.inside[idx] = above
        self.outside[idx] = ~above
        self.unknown[idx] = False
        self.n_evaluated += len(logits)
        self.rounds += 1
        self._pending = self._advance()

    def _advance(self) -> np.ndarray:
        """Subdivide straddling voxels; return the unknown lattice points their children need."""
        n = self.resolution + 1
        while True:
            found, changed = [], False
            for level in range(self.steps):
                newly = self._subdivide(level)
                if newly is None:
                    continue
                changed = True
                s = self._stride(level + 1)
                corners = _child_corners(newly)  # (2r+1,)^3 on the lattice of stride s
                corners &= self.unknown[::s, ::s, ::s]
                if corners.any():
                    found.append(np.argwhere(corners) * s)
            if not changed:
                return np.zeros((0, 3), dtype=np.int64)
            if found:
                if len(found) == 1:
                    return found[0]
                flat = np.unique(np.concatenate([(f[:, 0] * n + f[:, 1]) * n + f[:, 2] for f in found]))
                return np.stack([flat // (n * n), flat // n % n, flat % n], axis=1)

    def _subdivide(self, level: int) -> np.ndarray | None:
        """Mark straddling leaf voxels of ``level`` as split; return the new ones as a mask (or None)."""
        candidates = self.exists[level] & ~self.split[level]
        if not candidates.any():
            return None
        s = self._stride(level)
        newly = candidates & _box_any(self.inside, s) & _box_any(self.outside, s)  # (r, r, r)
        if not newly.any():
            return None
        self.split[level] |= newly
        self.exists[level + 1] |= _upsample2(newly)
        return newly

    def to_dense(self) -> np.ndarray:
        """The (R+1)^3 field: known values, other points trilinear from their leaf voxel."""
        known = self.known
        s0 = self._stride(0)
        dense = self.values[::s0, ::s0, ::s0]
        for level in range(1, self.steps + 1):
            s = self._stride(level)
            dense = np.where(known[::s, ::s, ::s], self.values[::s, ::s, ::s], _interp2(dense))
        return np.ascontiguousarray(dense, dtype=np.float32)

    def result(self) -> MiseResult:
        """The dense field and statistics."""
        return MiseResult(self.to_dense(), self.n_evaluated, self.rounds)


def _box_any(grid: np.ndarray, s: int) -> np.ndarray:
    """Any over every closed box [i*s, i*s+s]^3: (r*s+1,)^3 bool -> (r,)^3, separably (3 passes)."""
    out = grid
    for axis in range(3):
        r = (out.shape[axis] - 1) // s
        index = [slice(None)] * 3
        acc = None
        for offset in range(s + 1):  # the s + 1 points of each closed interval along ``axis``
            index[axis] = slice(offset, offset + r * s, s)
            part = out[tuple(index)]
            acc = part.copy() if acc is None else np.logical_or(acc, part, out=acc)
        out = acc
    return out


def _child_corners(voxels: np.ndarray) -> np.ndarray:
    """(r,)^3 voxel mask -> (2r+1,)^3 mask of the corners of their 8 children each.

    Along each axis, point q of the finer lattice is a child corner of voxel i when
    2i <= q <= 2i + 2: even q = 2i belongs to voxels i - 1 and i, odd q = 2i + 1 to voxel i.
    """
    out = voxels
    for axis in range(3):
        moved = np.moveaxis(out, axis, 0)
        r = moved.shape[0]
        fine = np.zeros((2 * r + 1, *moved.shape[1:]), dtype=bool)
        fine[1::2] = moved
        fine[0:-1:2] |= moved
        fine[2::2] |= moved
        out = np.moveaxis(fine, 0, axis)
    return out


def _upsample2(mask: np.ndarray) -> np.ndarray:
    """Nearest-neighbour x2 upsampling of an (r, r, r) mask -> (2r, 2r, 2r)."""
    r0, r1, r2 = mask.shape
    return np.broadcast_to(mask[:, None, :, None, :, None], (r0, 2, r1, 2, r2, 2)).reshape(2 * r0, 2 * r1, 2 * r2)


def _interp2(grid: np.ndarray) -> np.ndarray:
    """Trilinear x2 refinement of a lattice: (r+1,)^3 -> (2r+1,)^3 (old points kept, midpoints averaged)."""
    out = grid
    for axis in range(3):
        out = np.moveaxis(out, axis, 0)
        fine = np.empty((2 * out.shape[0] - 1, *out.shape[1:]), dtype=np.float32)
        fine[0::2] = out
        fine[1::2] = 0.5 * (out[:-1] + out[1:])
        out = np.moveaxis(fine, 0, axis)
    return out
