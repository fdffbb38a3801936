"""The ReconError family: every failure a user can cause is one of these.

Library code raises them; only the CLI turns them into a one-line red message
and exit code 1.
"""

from __future__ import annotations

from pathlib import Path


class ReconError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(ReconError):
    """A bad input file (image, mesh, point cloud) or argument."""


class ConfigError(ReconError):
    """A bad configuration file, key or value."""


class CheckpointError(ReconError):
    """A missing, truncated or mismatched checkpoint."""


class DatasetError(ReconError):
    """A dataset that does not follow the ShapeNet layout."""
