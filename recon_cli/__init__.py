"""recon: photos to 3D meshes with D-OccNet.

The Python API (:mod:`recon_cli.api`) is exported here but imported lazily, so
``import recon_cli`` (and ``recon --help``) stays fast:

    from recon_cli import load_model
    mesh = load_model().reconstruct("chair.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Before any recon module can import torch: idle OpenMP threads sleep instead of spinning
# (OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise); see recon_cli.runtime.threads.
from recon_cli.runtime.threads import prepare_environment as _prepare_environment  # noqa: E402

_prepare_environment()

if TYPE_CHECKING:
    from recon_cli.api import EmptyReconstructionError, ReconModel, ReconResult, load_model

#: Names exported from :mod:`recon_cli.api` on first use.
_API = ("load_model", "ReconModel", "ReconResult", "PreparedView", "EmptyReconstructionError",
        "SuspiciousReconstructionError")

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from recon_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'recon_cli' has no attribute {name!r}")
