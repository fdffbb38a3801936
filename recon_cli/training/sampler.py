"""Deterministic data order: seeded epoch permutations, per-item seeds, the batch sampler."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recon_cli.errors import DatasetError

# ---------------------------------------------------------------- deterministic sampling


def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def batch_indices(n: int, batch_size: int, step: int, seed: int, repeats: np.ndarray | None = None) -> np.ndarray:
    """Dataset indices of the global batch of ``step``: a slice of the seeded epoch permutations.

    ``repeats`` (n,) ints >= 1: how many times each item appears in an epoch (all once without it),
    so an item of weight k is drawn k times as often; still a pure function of (seed, step).
    """
    if n < 1:
        raise DatasetError("the training split is empty")
    if repeats is not None:
        repeats = np.asarray(repeats, dtype=np.int64)
        if repeats.shape != (n,) or (repeats < 1).any():
            raise ValueError(f"repeats must be {n} integers >= 1")
        items = np.repeat(np.arange(n), repeats)
        return items[batch_indices(len(items), batch_size, step, seed)]
    out: list[np.ndarray] = []
    pos = step * batch_size
    need = batch_size
    while need:
        epoch, offset = divmod(pos, n)
        take = min(need, n - offset)
        out.append(_epoch_permutation(n, seed, epoch)[offset:offset + take])
        pos += take
        need -= take
    return np.concatenate(out)


def item_seed(seed: int, step: int, slot: int) -> int:
    """Seed of one item's random choices, from (seed, step, slot in the global batch)."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1)[0])


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps ``start..stop-1``, this rank's ``[(index, item_seed), ...]``."""

    def __init__(self, n: int, batch_size: int, *, seed: int, start: int, stop: int,
                 rank: int = 0, world_size: int = 1, repeats: np.ndarray | None = None) -> None:
        self.n, self.batch_size, self.seed, self.repeats = n, batch_size, seed, repeats
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            idx = batch_indices(self.n, self.batch_size, step, self.seed, self.repeats)
            slots = range(self.rank, self.batch_size, self.world_size)
            yield [(int(idx[s]), item_seed(self.seed, step, s)) for s in slots]


class WrappedItems(torch.utils.data.Dataset):
    """A dataset wrapper: same length, and the wrapped reader's attributes (``models``, ...) pass through."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (e.g. while unpickling in a worker)
            raise AttributeError(name)
        return getattr(self.base, name)


class SeededItems(torch.utils.data.Dataset):
    """Wraps a dataset so ``ds[(index, seed)]`` draws its randomness from ``seed``.

    The global ``random``, ``numpy`` and ``torch`` generators are seeded for the
    call and restored afterwards, so results do not depend on which worker
    process or how many items came before.
    """

    def __init__(self, base: torch.utils.data.Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        with _seeded(seed):
            return self.base[index]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, np.integer)):
            out[key] = torch.as_tensor([int(v) for v in values])
        else:
            out[key] = values
    return out

