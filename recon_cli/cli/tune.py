"""`recon tune-threshold`: choose the surface threshold on validation and store it in the weights."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, guarded, print_json
from recon_cli.cli.options import threads_option, use_threads


def register(app: typer.Typer) -> None:
    """Attach `tune-threshold` to the app."""
    app.command("tune-threshold")(tune_threshold)


@guarded
def tune_threshold(
    weights: Path = typer.Argument(..., help="Checkpoint to tune (.pt)."),
    data: Path = typer.Option(..., "--data", help="Dataset root (ShapeNet layout)."),
    split: str = typer.Option("val", "--split", help="Split to tune on (never the test split you report)."),
    limit: int = typer.Option(0, "--limit", min=0, help="At most N models, evenly spaced (0 = all)."),
    out: Path = typer.Option(None, "-o", "--out", help="Write the tuned checkpoint here (default: in place)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the table; write nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    threads: int = threads_option(),
) -> None:
    """IoU per threshold on a split (stage 1 alone and the whole D-OccNet chain, view 0); the best
    threshold per mode is stored in the checkpoint and becomes the default of reconstruct and eval.

    Example: recon tune-threshold runs/lite/best.pt --data data/train --split val
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from recon_cli.training.thresholds import tune_thresholds, write_thresholds

    use_threads(threads)
    with Progress(TextColumn("tuning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("tune", total=None)
        report = tune_thresholds(weights, data, split=split, limit=limit,
                                 on_progress=lambda d, t: progress.update(task, completed=d, total=t))
    if not dry_run:
        report["written"] = str(write_thresholds(weights, out or weights, report["best"], report))
    if json_out:
        print_json(report)
        return
    for mode, row in report["table"].items():
        cells = "  ".join(f"{t}:{v:.3f}" for t, v in row.items())
        err_console.print(f"{mode:8s} {cells}  -> {report['best'][mode]:g}", markup=False)
    err_console.print(f"{report['models']} {split} models" + (f"; wrote {report['written']}" if not dry_run else ""),
                      markup=False)
