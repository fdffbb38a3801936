"""Chunk-level parallelism for the decoder hot loop.

:class:`ChunkPool` runs ``fn(task)`` for a list of independent tasks (chunks of
query points) on ``threads`` worker threads and returns the results in task
order. The caller runs it with torch at one intra-op thread
(:func:`recon_cli.runtime.threads.torch_threads`; torch's count is
process-wide), so every worker runs its operations single-threaded: one
parallel region per chunk instead of one (with an OpenMP barrier) per
operation: a core taken by another process slows one worker down instead of
stalling every operation, and no thread spins while waiting. torch and
onnxruntime release the GIL inside their kernels, so the workers really run
in parallel. With one thread the tasks run in the calling thread.

Which chunk a point lands in never depends on the number of threads, and each
chunk is computed the same way on any worker, so results do not depend on the
thread count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


class ChunkPool:
    """``threads`` workers (created on first use) that map a function over tasks in order."""

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[fn(t) for t in tasks]``, on the workers when there are several threads and tasks."""
        if self.threads == 1 or len(tasks) <= 1:
            return [fn(t) for t in tasks]
        return list(self._pool().map(fn, tasks))

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="recon-decode")
            return self._executor

    def close(self) -> None:
        """Stop the workers (a later :meth:`map` starts new ones)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self) -> ChunkPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def map_chunks(pool: ChunkPool, queries: Sequence[np.ndarray], step: int,
               run: Callable[[int, np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Per-shape points -> per-shape results, computed in fixed chunks of ``step`` points per shape.

    ``run(i, chunk)`` gets shape ``i``'s float32 chunk (m, 3) and returns (m,) values.
    Chunks never mix shapes and start at multiples of ``step`` within a shape, so a
    shape's values depend neither on the rest of the batch nor on the thread count.
    """
    points = [np.ascontiguousarray(q, dtype=np.float32).reshape(-1, 3) for q in queries]
    tasks = [(i, s) for i, q in enumerate(points) for s in range(0, len(q), step)]
    parts = pool.map(lambda task: run(task[0], points[task[0]][task[1] : task[1] + step]), tasks)
    out: list[list[np.ndarray]] = [[] for _ in points]
    for (i, _s), part in zip(tasks, parts):
        out[i].append(np.asarray(part, dtype=np.float32).reshape(-1))
    return [np.concatenate(p) if p else np.zeros(0, dtype=np.float32) for p in out]
