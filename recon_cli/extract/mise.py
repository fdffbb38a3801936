"""Multiresolution iso-surface extraction (MISE, Mescheder et al. 2019), vectorised.

Start with the (resolution0 + 1)^3 corner lattice; each round evaluates only
points whose value is unknown; a voxel is subdivided when the known values on
its (closed) box lie on both sides of the level; rounds go on until nothing new
is queried. Lattice point p of the finest lattice (R = resolution0 * 2**steps)
maps to x = box * (p / R - 0.5) (see :mod:`recon_cli.extract.grid`).

All bookkeeping is array work on the evaluated points and the voxels that
change (no pass over the finest lattice until the final field is built, no
Python loop over voxels). The field to extract is a function of points: ``eval_fn``
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
    """Dense (R+1)^3 float32 field (unknown points filled by trilinear interpolation).

    ``known``: (R+1)^3 bool, the lattice points whose value was evaluated (not interpolated).
    """

    values: np.ndarray
    n_evaluated: int
    rounds: int
    known: np.ndarray | None = None


class MISE:
    """State of one shape's extraction: call :meth:`query`, evaluate, :meth:`update`, repeat.

    Bookkeeping scales with the surface, not the volume: evaluated points are
    kept as flat lattice indices with their values; for every level a voxel
    grid (at most (R/2)^3) records whether some known point in the voxel's
    closed box is inside and whether one is outside, updated only from the
    points of each round; new points are found from the voxels just split.
    Only a boolean "known" mask and the value array are lattice-sized, and they
    are touched only at evaluated points (:meth:`to_dense` builds the full field
    once at the end). The points queried, round by round and in the same
    (C) order, and the field are exactly those of a dense-array implementation
    (the tests keep one as the oracle). numpy, single-threaded.
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
        self._n = n
        # lattice-sized, but only written at evaluated points (np.zeros maps pages lazily)
        self._values = np.zeros(n**3, dtype=np.float32)
        self._known = np.zeros(n**3, dtype=bool)
        self._scratch = np.empty(n**3, dtype=np.int32)  # for de-duplicating indices; never read unwritten
        self._known_idx: list[np.ndarray] = []  # flat indices evaluated, per round
        # per level l < steps: voxel flags (r_l^3, flat); exists[steps] is implied by split[steps - 1]
        self._split = [np.zeros(self._res(l) ** 3, dtype=bool) for l in range(self.steps)]
        self._exists = [np.zeros(self._res(l) ** 3, dtype=bool) for l in range(self.steps)]
        self._has_in = [np.zeros(self._res(l) ** 3, dtype=bool) for l in range(self.steps)]
        self._has_out = [np.zeros(self._res(l) ** 3, dtype=bool) for l in range(self.steps)]
        if self.steps:
            self._exists[0][:] = True
        axis = np.arange(0, n, self._stride(0))
        coarse = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # C order
        self._pending = (coarse[:, 0] * n + coarse[:, 1]) * n + coarse[:, 2]  # flat indices, ascending
        self.n_evaluated = 0
        self.rounds = 0

    def _res(self, level: int) -> int:
        return self.resolution0 * 2**level

    def _stride(self, level: int) -> int:
        return 2 ** (self.steps - level)

    def _coords(self, flat: np.ndarray) -> np.ndarray:
        n = self._n
        return np.stack([flat // (n * n), flat // n % n, flat % n], axis=1)

    @property
    def values(self) -> np.ndarray:
        """(R+1)^3 float32: evaluated values (zeros elsewhere)."""
        return self._values.reshape((self._n,) * 3)

    @property
    def known(self) -> np.ndarray:
        """(R+1)^3 bool: which lattice points have been evaluated."""
        return self._known.reshape((self._n,) * 3)

    @property
    def unknown(self) -> np.ndarray:
        """(R+1)^3 bool: which lattice points have not been evaluated."""
        return ~self.known

    @property
    def done(self) -> bool:
        """True once nothing is left to query."""
        return len(self._pending) == 0

    def query(self) -> np.ndarray:
        """World coordinates (M, 3) float32 of the points to evaluate next (empty when done)."""
        return (box_size(self.padding) * (self._coords(self._pending) / self.resolution - 0.5)).astype(np.float32)

    def update(self, logits: np.ndarray) -> None:
        """Store the values of the last query, then subdivide until new points are needed."""
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if len(logits) != len(self._pending):
            raise ValueError(f"expected {len(self._pending)} values, got {len(logits)}")
        flat = self._pending
        self._values[flat] = logits
        self._known[flat] = True
        self._known_idx.append(flat)
        above = logits > self.level
        coords = self._coords(flat)
        for level in range(self.steps):
            self._mark_boxes(level, coords[above], self._has_in[level])
            self._mark_boxes(level, coords[~above], self._has_out[level])
        self.n_evaluated += len(logits)
        self.rounds += 1
        self._pending = self._advance()

    def _mark_boxes(self, level: int, coords: np.ndarray, flags: np.ndarray) -> None:
        """Set ``flags`` of every level-``level`` voxel whose closed box holds one of the points.

        Along an axis, point p lies in voxel i's closed box [i*s, i*s+s] for
        i = p // s, and also for i = p // s - 1 when p is a multiple of s.
        """
        if len(coords) == 0:
            return
        s, r = self._stride(level), self._res(level)
        hi = np.minimum(coords // s, r - 1)
        lo = np.maximum((coords + s - 1) // s - 1, 0)
        for pick in range(8):
            idx = [lo[:, a] if pick >> a & 1 else hi[:, a] for a in range(3)]
            flags[(idx[0] * r + idx[1]) * r + idx[2]] = True

    def _advance(self) -> np.ndarray:
        """Subdivide straddling voxels; return the unknown lattice points their children need (flat, sorted)."""
        while True:
            found, changed = [], False
            for level in range(self.steps):
                newly = self._subdivide(level)
                if newly is None:
                    continue
                changed = True
                corners = self._child_corners(level, newly)
                corners = corners[~self._known[corners]]
                if len(corners):
                    found.append(corners)
            if not changed:
                return np.zeros(0, dtype=np.int64)
            if found:
                return self._unique(np.concatenate(found))

    def _unique(self, flat: np.ndarray) -> np.ndarray:
        """Sorted unique values of ``flat`` (lattice indices), in time linear in its length.

        Each index writes its position into a lattice-sized scratch array; the
        positions that survive (the last writer of each index) are the unique ones.
        """
        if len(flat) >= 2**31:
            return np.unique(flat)
        order = np.arange(len(flat), dtype=np.int32)
        self._scratch[flat] = order
        return np.sort(flat[self._scratch[flat] == order])

    def _subdivide(self, level: int) -> np.ndarray | None:
        """Mark straddling leaf voxels of ``level`` as split; return them (flat voxel indices) or None."""
        newly = np.flatnonzero(self._exists[level] & ~self._split[level] & self._has_in[level] & self._has_out[level])
        if len(newly) == 0:
            return None
        self._split[level][newly] = True
        if level + 1 < self.steps:
            self._exists[level + 1][self._children(level, newly)] = True
        return newly

    def _children(self, level: int, voxels: np.ndarray) -> np.ndarray:
        """Flat indices (8k,) on level + 1 of the children of level-``level`` voxels (flat, (k,))."""
        r = self._res(level)
        v = np.stack([voxels // (r * r), voxels // r % r, voxels % r], axis=1) * 2
        out = [((v[:, 0] + a) * 2 * r + v[:, 1] + b) * 2 * r + v[:, 2] + c
               for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        return np.concatenate(out)

    def _child_corners(self, level: int, voxels: np.ndarray) -> np.ndarray:
        """Flat lattice indices of the corners of the children of level-``level`` voxels (27 per voxel)."""
        r, n, s = self._res(level), self._n, self._stride(level + 1)
        v = np.stack([voxels // (r * r), voxels // r % r, voxels % r], axis=1) * (2 * s)
        steps = np.arange(3) * s
        x = (v[:, 0, None] + steps) * (n * n)  # (k, 3)
        y = (v[:, 1, None] + steps) * n
        z = v[:, 2, None] + steps
        return (x[:, :, None, None] + y[:, None, :, None] + z[:, None, None, :]).reshape(-1)

    def to_dense(self) -> np.ndarray:
        """The (R+1)^3 field: known values, other points trilinear from their leaf voxel."""
        known = self.known
        values = self.values
        s0 = self._stride(0)
        dense = np.ascontiguousarray(values[::s0, ::s0, ::s0])
        for level in range(1, self.steps + 1):
            s = self._stride(level)
            dense = _interp2(dense)
            np.copyto(dense, values[::s, ::s, ::s], where=known[::s, ::s, ::s])
        return dense

    def result(self) -> MiseResult:
        """The dense field and statistics."""
        return MiseResult(self.to_dense(), self.n_evaluated, self.rounds, self.known)


def _interp2(grid: np.ndarray) -> np.ndarray:
    """Trilinear x2 refinement of a lattice: (r+1,)^3 -> (2r+1,)^3 (old points kept, midpoints averaged).

    Midpoints along axis 0, then 1, then 2 (each pass averages values of the previous ones),
    written straight into the output.
    """
    r0, r1, r2 = (d - 1 for d in grid.shape)
    out = np.empty((2 * r0 + 1, 2 * r1 + 1, 2 * r2 + 1), dtype=np.float32)
    even = out[::2, ::2, ::2]
    even[...] = grid
    np.add(grid[:-1], grid[1:], out=out[1::2, ::2, ::2])
    out[1::2, ::2, ::2] *= 0.5
    np.add(out[:, 0:-1:2, ::2], out[:, 2::2, ::2], out=out[:, 1::2, ::2])
    out[:, 1::2, ::2] *= 0.5
    np.add(out[:, :, 0:-1:2], out[:, :, 2::2], out=out[:, :, 1::2])
    out[:, :, 1::2] *= 0.5
    return out


def mise_batched(
    eval_fn: BatchedEvalFn,
    n_shapes: int,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    level: float = 0.0,
    *,
    padding: float = PADDING,
) -> list[MiseResult]:
    """MISE for ``n_shapes`` shapes advanced together (one ``eval_fn`` call per round).

    ``eval_fn`` receives one (M_i, 3) float32 array per shape (M_i may be 0 for a
    finished shape) and returns one (M_i,) logit array per shape.
    """
    states = [MISE(resolution0, upsampling_steps, level, padding=padding) for _ in range(n_shapes)]
    while not all(state.done for state in states):
        queries = [state.query() for state in states]
        outputs = eval_fn(queries)
        for state, query, out in zip(states, queries, outputs):
            if len(query):
                state.update(out)
    return [state.result() for state in states]


def mise(
    eval_fn: EvalFn,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    level: float = 0.0,
    *,
    padding: float = PADDING,
) -> MiseResult:
    """MISE for one shape; ``eval_fn`` maps (M, 3) float32 points to (M,) logits."""
    (result,) = mise_batched(
        lambda queries: [eval_fn(queries[0])], 1, resolution0, upsampling_steps, level, padding=padding
    )
    return result


def surface_corners(values: np.ndarray, level: float, known: np.ndarray | None = None) -> np.ndarray:
    """Flat indices of the lattice points at either end of an axis edge whose ends lie on opposite sides
    of ``level`` (where marching cubes puts vertices), among the ``known`` ones if given."""
    inside = values > level
    mark = np.zeros(values.shape, bool)
    for axis in range(3):
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        change = inside[hi] != inside[lo]
        mark[hi] |= change
        mark[lo] |= change
    if known is not None:
        mark &= known
    return np.flatnonzero(mark)


def dense_grid(eval_fn: EvalFn, resolution: int, *, padding: float = PADDING, batch_points: int = 262_144) -> np.ndarray:
    """Evaluate ``eval_fn`` on every point of the (R+1)^3 lattice (the reference MISE must match)."""
    from recon_cli.extract.grid import lattice_points

    points = lattice_points(resolution, padding=padding)
    out = np.concatenate([np.asarray(eval_fn(points[i : i + batch_points])) for i in range(0, len(points), batch_points)])
    n = resolution + 1
    return out.astype(np.float32).reshape(n, n, n)
