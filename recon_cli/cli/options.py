"""Options shared by the commands that run a network (``--threads``, ``--precision``).

Each such command declares ``threads: int = threads_option()`` and calls
:func:`use_threads` first thing, before anything imports torch (command modules
import torch only inside their functions), so the thread settings reach
OpenMP when it loads.
"""

from __future__ import annotations

from typing import Any

import typer

THREADS_HELP = ("CPU threads for the networks (default: $RECON_THREADS, else 2 or the cores available if fewer). "
                "Idle threads sleep instead of spinning.")
PRECISION_HELP = ("Decoder arithmetic on the CPU: float32 (the model's own numbers), mixed (bfloat16 for the final "
                  "mesh with every value near its surface redone in float32: the float32 mesh, a little faster on "
                  "CPUs with AVX512-BF16/AMX), bfloat16 (fastest; meshes differ), or auto (mixed where the CPU "
                  "has native bfloat16, else float32).")


def threads_option() -> Any:
    """The ``--threads N`` option (None = the default of :func:`recon_cli.runtime.threads.default_threads`)."""
    return typer.Option(None, "--threads", min=1, metavar="N", help=THREADS_HELP)


def use_threads(threads: int | None) -> int:
    """Apply ``--threads`` for this process (before torch loads); return the count used."""
    from recon_cli.runtime.threads import set_threads

    return set_threads(threads)
