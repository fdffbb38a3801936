"""Output-path checks made before any work: a command that can only fail at the end fails at once.

``check_output_folder`` and ``check_output_file`` raise :class:`InputError`
naming the path when it is the wrong kind (a file where a folder is wanted,
a folder where a file is wanted, a file among the parents) or cannot be
written (permission denied, read-only file system). Nothing is created.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from recon_cli.errors import InputError


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_writable(folder: Path, target: Path) -> None:
    """InputError when no file can be created in the existing ``folder``."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write here: {folder} is not writable (permission denied)", path=target)
    try:  # access() does not see read-only mounts; a probe file does
        fd, probe = tempfile.mkstemp(prefix=".recon-write-test.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write here: {folder}: {exc.strerror or exc}", path=target) from None
    os.close(fd)
    os.unlink(probe)


def check_output_folder(path: str | Path) -> Path:
    """Check that ``path`` is (or can be created as) a writable folder; return it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder; give a folder path", path=path)
    base = _nearest_existing(path)
    if not base.is_dir():
        raise InputError(f"cannot create a folder here: {base} is a file", path=path)
    _check_writable(base, path)
    return path


def check_output_file(path: str | Path) -> Path:
    """Check that ``path`` names a file (not a folder) that can be written; return it."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; give a file name", path=path)
    parent = path.absolute().parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"cannot write here: {parent} is a file", path=path)
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise InputError(f"cannot write here: {base} is a file", path=path)
    _check_writable(base, path)
    return path
