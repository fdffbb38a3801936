"""`recon data merge`: several datasets in the ShapeNet layout as one."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, guarded, print_json


def register(app: typer.Typer) -> None:
    """Attach `merge` to the `data` command group."""
    from recon_cli.cli.data import data_app

    data_app.command("merge")(merge)


@guarded
def merge(
    sources: list[Path] = typer.Argument(..., help="Dataset roots to merge (two or more)."),
    out: Path = typer.Option(..., "-o", "--out", help="Merged dataset root (new or empty)."),
    copy: bool = typer.Option(False, "--copy", help="Copy the model folders instead of linking them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier merge in --out."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Merge datasets: every model keeps its split; model folders are symbolic links (or --copy).

    Example: recon data merge data/synth data/real -o data/train
    """
    from dataclasses import asdict

    from recon_cli.data.merge import merge_datasets

    report = merge_datasets(list(sources), out, copy=copy, overwrite=overwrite)
    if json_out:
        print_json(asdict(report))
    else:
        cats = ", ".join(f"{k} {v}" for k, v in sorted(report.per_category.items()))
        err_console.print(f"{report.models} models -> {report.out} ({cats})", markup=False)
