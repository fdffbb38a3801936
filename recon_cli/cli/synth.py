"""`recon data synth` and `recon data preview` (procedural dataset, contact sheet)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json
from recon_cli.cli.data import data_app


@data_app.command("synth")
@guarded
def synth(
    out: Path = typer.Option(..., "-o", "--out", help="Dataset root to write (created if missing)."),
    per_category: int = typer.Option(100, "--per-category", "-n", min=1, help="Models per category."),
    categories: Optional[str] = typer.Option(
        None, "--categories", "-c", help="Comma-separated names or synset ids (default: all 13)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Dataset seed: the same seed gives the same files."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Parallel worker processes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rewrite models that are already finished."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Generate a procedural dataset of the 13 ShapeNet categories in the ShapeNet layout.

    Example: recon data synth -o data/synth --per-category 80 --workers 2
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from recon_cli.data.categories import parse_categories
    from recon_cli.data.synth import synth_dataset, synth_jobs

    synsets = parse_categories(categories)
    total = len(synth_jobs(per_category, synsets, seed))
    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[last]}"))
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("synth", total=total, last="")

        def on_progress(result) -> None:  # noqa: ANN001 - ModelResult
            state = "skipped" if result.skipped else ("ok" if result.ok else "FAILED")
            progress.update(task, advance=1, last=f"{result.model_id} {state}")

        report = synth_dataset(out, per_category=per_category, categories=synsets, seed=seed, workers=workers,
                               overwrite=overwrite, on_progress=on_progress)
    _finish(report, out, json_out=json_out)


def _finish(report, out: Path, *, json_out: bool) -> None:  # noqa: ANN001 - BuildReport
    """Print the report (JSON on stdout or a summary on stderr); exit 1 when a model failed."""
    results = list(getattr(report, "results", []))
    failed = [r for r in results if not r.ok]
    doc = {
        "root": str(out),
        "models": len(results),
        "written": sum(1 for r in results if r.ok and not r.skipped),
        "skipped": sum(1 for r in results if r.skipped),
        "failed": [{"synset": r.synset, "model": r.model_id, "error": r.error} for r in failed],
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    for r in failed:  # one error line per failed model, as every batch command does
        fail(f"{r.synset}/{r.model_id}: {r.error}")
    if json_out:
        print_json(doc)
    else:
        err_console.print(f"{doc['written']} written, {doc['skipped']} skipped, {len(failed)} failed -> {out}",
                          markup=False, style="red" if failed else None)
    if failed:
        raise typer.Exit(1)


@data_app.command("preview")
@guarded
def preview(
    root: Path = typer.Argument(..., help="Dataset root."),
    out: Path = typer.Option(Path("sheet.png"), "-o", "--out", help="PNG file to write."),
    per_category: int = typer.Option(8, "--per-category", "-n", min=1, help="Renders per category (row)."),
    split: Optional[str] = typer.Option(None, "--split", help="train, val or test (default: all models)."),
    view: int = typer.Option(0, "--view", min=0, help="Which render of each model (000.jpg by default)."),
    canonical: bool = typer.Option(False, "--canonical",
                                   help="Draw every model's surface points from one canonical viewpoint "
                                        "(fronts towards the viewer) instead of a render."),
    json_out: bool = typer.Option(False, "--json", help="Print the output path as JSON on stdout."),
) -> None:
    """Write a contact sheet PNG: one labelled row of renders (view 000 by default) per category.

    Example: recon data preview data/synth -o sheet.png --per-category 8 --split test
    """
    from recon_cli.data.synth import contact_sheet

    path = contact_sheet(root, out, per_category=per_category, split=split, view=view, canonical=canonical)
    if json_out:
        print_json({"sheet": str(path)})
    else:
        err_console.print(f"contact sheet -> {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Commands are attached to the `data` group defined in cli/data.py."""
    del app  # the commands register themselves on data_app at import
