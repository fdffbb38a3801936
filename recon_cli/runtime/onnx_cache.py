"""ONNX exports made on the fly and cached per checkpoint.

``recon reconstruct --backend onnx`` without ``--onnx-dir`` exports the
checkpoint once into ``<cache>/onnx/<digest>/`` (``digest``: the first 16 hex
digits of the checkpoint file's SHA-256, so changed weights get a new export)
and reuses it afterwards. The cache folder is ``$RECON_CACHE_DIR``, else
``$XDG_CACHE_HOME/recon``, else ``~/.cache/recon``. Exports are written
atomically (:func:`recon_cli.runtime.onnx_export.export_onnx` renames a
finished temporary folder into place), so two processes exporting at once
both end with a complete folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from recon_cli.runtime.onnx_export import MANIFEST_NAME

CACHE_ENV = "RECON_CACHE_DIR"


def cache_root() -> Path:
    """The user cache folder of recon."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "recon"


def checkpoint_digest(path: str | Path) -> str:
    """First 16 hex digits of the file's SHA-256."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def cached_export(weights: str | Path, *, root: str | Path | None = None) -> Path:
    """The ONNX export folder of checkpoint ``weights``, exporting it first if it is not cached."""
    from recon_cli.runtime.onnx_export import export_checkpoint

    folder = Path(root) if root is not None else cache_root()
    target = folder / "onnx" / checkpoint_digest(weights)
    if not (target / MANIFEST_NAME).is_file():
        export_checkpoint(weights, target)
    return target
