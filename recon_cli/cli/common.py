"""Shared CLI helpers: consoles, error handling, JSON output.

Only the CLI prints. Human messages and progress go to stderr; ``--json``
documents go to stdout.
"""

from __future__ import annotations

import errno
import functools
import json
import os
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


#: errno -> what it means for a path given on the command line.
_OS_MESSAGES = {
    errno.EEXIST: "exists and is not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.ENOENT: "no such file or folder",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path it names and what went wrong."""
    what = _OS_MESSAGES.get(exc.errno or -1, exc.strerror or str(exc))
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return what


#: Exceptions Typer turns into exit codes and usage messages itself.
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, typer.exceptions.TyperException)


_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})


def _refuse_flag_values(kwargs: dict[str, Any]) -> None:
    """`--json true x.png`: a flag takes no value, so 'true' would become an input file. Refuse it
    as a usage error (exit code 2) when no such file exists."""
    for value in kwargs.values():
        if isinstance(value, (list, tuple)):
            for item in value:
                text = str(item)
                if text.lower() in _BOOL_WORDS and not os.path.exists(text):
                    raise typer.BadParameter(f"{text!r} is not a file: flags take no value "
                                             f"(write --json, not --json {text})")


def guarded(func: F) -> F:
    """Turn the failures a command can raise into one red line and an exit code.

    ReconError and OSError (a path of the wrong kind, permissions, a full disk):
    exit 1. Ctrl-C: exit 130. Anything else is a bug: one line saying so
    (``RECON_DEBUG=1`` shows the traceback), exit 1. Typer/Click exits and usage
    errors (exit 2) pass through.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _refuse_flag_values(kwargs)
        try:
            return func(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except ReconError as exc:
            fail(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            fail("interrupted")
            raise typer.Exit(130) from None
        except OSError as exc:
            if os.environ.get("RECON_DEBUG"):
                raise
            fail(os_error_line(exc))
            raise typer.Exit(1) from None
        except Exception as exc:
            if os.environ.get("RECON_DEBUG"):
                raise
            fail(f"internal error ({type(exc).__name__}: {exc})".splitlines()[0]
                 + "; this is a bug in recon: rerun with RECON_DEBUG=1 for the traceback and report it")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def one_of(values: Any) -> Any:
    """A Typer callback accepting only ``values`` (None passes); a usage error (exit code 2) otherwise."""
    allowed = tuple(values)

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


def print_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()
