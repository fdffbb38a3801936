"""`recon data synth` and `recon data preview` (procedural dataset)."""

from __future__ import annotations

import typer

from recon_cli.cli.data import data_app


def register(app: typer.Typer) -> None:
    """Commands are attached to the `data` group defined in cli/data.py."""
    del app  # the commands register themselves on data_app at import
