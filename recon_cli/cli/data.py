"""`recon data ...`: dataset commands (check, build, synth, preview)."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Build, generate and validate datasets in the ShapeNet layout.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `data` command group to the root app."""
    app.add_typer(data_app, name="data")
