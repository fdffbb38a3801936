"""`recon data features`: build the image-feature cache that `recon train` uses with a frozen encoder."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, guarded, print_json


def register(app: typer.Typer) -> None:
    """Attach `features` to the `data` command group."""
    from recon_cli.cli.data import data_app

    data_app.command("features")(features)


@guarded
def features(
    root: Path = typer.Argument(..., help="Dataset root (ShapeNet layout)."),
    config: str = typer.Option("doccnet-lite", "--config", help="Training config (built-in name or YAML file)."),
    overrides: list[str] = typer.Option(None, "--set", help="Override one config key (repeatable)."),
    splits: str = typer.Option("train", "--splits", help="Comma-separated splits to encode."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Encode every view of every model once with the config's frozen image encoder.

    Stored in ROOT/.features/<key> (key: encoder weights + image preprocessing); an
    interrupted run resumes. Example: recon data features data/synth --config doccnet-lite
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from recon_cli.training import resolve_config
    from recon_cli.training.features import build_features_for_config

    cfg = resolve_config(config_file=config, overrides=overrides or [])
    columns = (TextColumn("features"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("features", total=None)
        report = build_features_for_config(
            root, cfg, splits=[s.strip() for s in splits.split(",") if s.strip()],
            on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    if json_out:
        print_json(report)
    else:
        err_console.print(f"{report['models']} model(s) cached in {report['seconds']:.1f} s -> {report['folder']}",
                          markup=False)
