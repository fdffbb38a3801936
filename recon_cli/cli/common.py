"""Shared CLI helpers: consoles, error handling, JSON output.

Only the CLI prints. Human messages and progress go to stderr; ``--json``
documents go to stdout.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from recon_cli.errors import ReconError

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False)


def fail(message: str) -> None:
    """Print one red line on stderr (no markup interpretation of ``message``)."""
    err_console.print(f"error: {message}", style="bold red", markup=False, soft_wrap=True)


def guarded(func: F) -> F:
    """Turn ReconError (and Ctrl-C) raised by a command into one red line and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ReconError as exc:
            fail(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            fail("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()
