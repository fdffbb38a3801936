"""Multiresolution iso-surface extraction (MISE, Mescheder et al. 2019), vectorised.

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
import torch
from torch.nn import functional as F

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
    """State of one shape's extraction: call :meth:`query`, evaluate, :meth:`update`, repeat."""

    def __init__(self, resolution0: int, upsampling_steps: int, level: float, *, padding: float = PADDING) -> None:
        if resolution0 < 1 or upsampling_steps < 0:
            raise ValueError("resolution0 must be >= 1 and upsampling_steps >= 0")
        self.resolution0 = resolution0
        self.steps = upsampling_steps
        self.level = float(level)
        self.padding = padding
        self.resolution = final_resolution(resolution0, upsampling_steps)
        n = self.resolution + 1
        self.values = torch.zeros((n, n, n), dtype=torch.float32)
        self.known = torch.zeros((n, n, n), dtype=torch.bool)
        self.split = [torch.zeros((self._res(l),) * 3, dtype=torch.bool) for l in range(self.steps)]
        self.exists = [torch.zeros((self._res(l),) * 3, dtype=torch.bool) for l in range(self.steps + 1)]
        self.exists[0].fill_(True)
        s0 = self._stride(0)
        coarse = torch.zeros((n, n, n), dtype=torch.bool)
        coarse[::s0, ::s0, ::s0] = True
        self._pending = torch.nonzero(coarse).to(torch.int64)  # (M, 3) lattice indices
        self.n_evaluated = 0
        self.rounds = 0

    def _res(self, level: int) -> int:
        return self.resolution0 * 2**level

    def _stride(self, level: int) -> int:
        return 2 ** (self.steps - level)

    @property
    def done(self) -> bool:
        """True once nothing is left to query."""
        return len(self._pending) == 0

    def query(self) -> np.ndarray:
        """World coordinates (M, 3) float32 of the points to evaluate next (empty when done)."""
        idx = self._pending.to(torch.float64)
        return (box_size(self.padding) * (idx / self.resolution - 0.5)).to(torch.float32).numpy()

    def update(self, logits: np.ndarray) -> None:
        """Store the values of the last query, then subdivide until new points are needed."""
        logits = torch.as_tensor(np.asarray(logits, dtype=np.float32)).reshape(-1)
        if len(logits) != len(self._pending):
            raise ValueError(f"expected {len(self._pending)} values, got {len(logits)}")
        i, j, k = self._pending.unbind(1)
        self.values[i, j, k] = logits
        self.known[i, j, k] = True
        self.n_evaluated += len(logits)
        self.rounds += 1
        self._pending = self._advance()

    def _advance(self) -> torch.Tensor:
        """Subdivide straddling voxels; return the unknown lattice points their children need."""
        while True:
            need = torch.zeros_like(self.known)
            changed = False
            for level in range(self.steps):
                newly = self._subdivide(level)
                if newly is None:
                    continue
                changed = True
                self._mark_children(level, newly, need)
            if not changed:
                return torch.zeros((0, 3), dtype=torch.int64)
            need &= ~self.known
            pending = torch.nonzero(need)
            if len(pending):
                return pending

    def _subdivide(self, level: int) -> torch.Tensor | None:
        """Mark straddling leaf voxels of ``level`` as split; return the new ones (or None)."""
        candidates = self.exists[level] & ~self.split[level]
        if not bool(candidates.any()):
            return None
        s = self._stride(level)
        inf = torch.tensor(float("inf"))
        hi = torch.where(self.known, self.values, -inf)[None, None]
        lo = torch.where(self.known, -self.values, -inf)[None, None]
        hi = F.max_pool3d(hi, kernel_size=s + 1, stride=s)[0, 0]  # (r, r, r) max known value per closed voxel
        lo = -F.max_pool3d(lo, kernel_size=s + 1, stride=s)[0, 0]  # min known value
        newly = candidates & (hi > self.level) & (lo <= self.level)
        if not bool(newly.any()):
            return None
        self.split[level] |= newly
        self.exists[level + 1] |= _upsample2(newly)
        return newly

    def _mark_children(self, level: int, newly: torch.Tensor, need: torch.Tensor) -> None:
        """Set ``need`` at every corner of the children of the ``newly`` split voxels."""
        child = _upsample2(newly).to(torch.float32)[None, None]  # (1, 1, 2r, 2r, 2r)
        corners = F.max_pool3d(F.pad(child, (1, 1, 1, 1, 1, 1)), kernel_size=2, stride=1)[0, 0] > 0
        s = self._stride(level + 1)
        need[::s, ::s, ::s] |= corners

    def to_dense(self) -> np.ndarray:
        """The (R+1)^3 field: known values, other points trilinear from their leaf voxel."""
        s0 = self._stride(0)
        dense = self.values[::s0, ::s0, ::s0][None, None]
        for level in range(1, self.steps + 1):
            s = self._stride(level)
            up = F.interpolate(dense, size=(self._res(level) + 1,) * 3, mode="trilinear", align_corners=True)
            dense = torch.where(self.known[::s, ::s, ::s], self.values[::s, ::s, ::s], up[0, 0])[None, None]
        return dense[0, 0].numpy()

    def result(self) -> MiseResult:
        """The dense field and statistics."""
        return MiseResult(self.to_dense(), self.n_evaluated, self.rounds)


def _upsample2(mask: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of a boolean (r, r, r) mask -> (2r, 2r, 2r)."""
    return mask.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)


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


def dense_grid(eval_fn: EvalFn, resolution: int, *, padding: float = PADDING, batch_points: int = 262_144) -> np.ndarray:
    """Evaluate ``eval_fn`` on every point of the (R+1)^3 lattice (the reference MISE must match)."""
    from recon_cli.extract.grid import lattice_points

    points = lattice_points(resolution, padding=padding)
    out = np.concatenate([np.asarray(eval_fn(points[i : i + batch_points])) for i in range(0, len(points), batch_points)])
    n = resolution + 1
    return out.astype(np.float32).reshape(n, n, n)
