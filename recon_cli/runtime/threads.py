"""CPU threads for the networks: how many, and no spin-waiting.

Importing this module does not import torch. Two things happen at different times:

* :func:`prepare_environment` (called from ``recon_cli/__init__.py``, i.e. before any
  recon module can load torch) sets ``OMP_WAIT_POLICY=PASSIVE`` and
  ``KMP_BLOCKTIME=0`` unless the user set them: idle OpenMP threads then sleep
  instead of spinning, which on a busy or shared CPU is the difference between
  1 s and 2-18 s per image. OpenMP reads these variables once, when torch loads
  its runtime, so they must be set before ``import torch``.
* :func:`set_threads` records the ``--threads N`` choice (and sets
  ``OMP_NUM_THREADS`` when torch has not loaded yet); :func:`torch_threads`
  sets torch's own count around the code that needs it.

How the decoder uses N threads: the hot loop (MISE rounds, hundreds of small
matrix products per image) runs N worker threads that each take whole chunks
of query points and run every operation of a chunk single-threaded
(:class:`recon_cli.runtime.parallel.ChunkPool`): one parallel region per chunk
instead of one per operation, so a core taken by another process slows one
worker instead of stalling every operation at an OpenMP barrier. Training and
the encoders use N intra-op torch threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

#: Environment defaults set before torch loads (user settings win).
ENVIRONMENT_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}

#: Environment variable that overrides the default thread count (an integer >= 1).
THREADS_ENV = "RECON_THREADS"

#: Most threads the default picks (measured on a shared 2-core machine; see benchmarks/).
DEFAULT_MAX_THREADS = 2

_chosen: int | None = None


def prepare_environment() -> None:
    """Set the OpenMP wait policy defaults; effective only if torch has not been imported yet."""
    for key, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def available_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``RECON_THREADS`` if set, else min(:data:`DEFAULT_MAX_THREADS`, available cores)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return min(DEFAULT_MAX_THREADS, available_cores())


def set_threads(threads: int | None) -> int:
    """Record the thread count for this process (None = :func:`default_threads`); return it.

    Before torch loads this also sets ``OMP_NUM_THREADS`` to 1 (unless the user
    set it): the decoder's workers are single-threaded and the encoders are small.
    After torch loads, :func:`torch_threads` sets it around each reconstruction.
    """
    global _chosen
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    prepare_environment()
    _chosen = threads if threads is not None else default_threads()
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    return _chosen


def chosen_threads() -> int:
    """The recorded thread count (the default when :func:`set_threads` was not called)."""
    return _chosen if _chosen is not None else default_threads()


@contextlib.contextmanager
def torch_threads(intra_op: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``intra_op``, then restore it.

    torch's thread count is process-wide (setting it in a worker thread changes it
    for every thread), so the decoder's single-threaded workers need the whole
    process at one intra-op thread while they run; training code that uses more
    gets its setting back afterwards. A no-op when the count is already right.
    """
    import torch

    before = torch.get_num_threads()
    if before != intra_op:
        torch.set_num_threads(intra_op)
    try:
        yield
    finally:
        if before != intra_op:
            torch.set_num_threads(before)
