"""`recon data import`: free 3D model collections (Debian packages) into the ShapeNet layout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json
from recon_cli.cli.data import _parse_split, _progress, data_app


@data_app.command("import")
@guarded
def import_cmd(
    source: str = typer.Argument(..., help="sweethome3d, flightgear, torcs, or all (comma-separated for several)."),
    out: Path = typer.Option(..., "-o", "--out", help="Dataset root to write (created if missing)."),
    from_paths: Optional[list[Path]] = typer.Option(
        None, "--from", help="A .deb, a folder of .debs, a .sh3f/.jar catalogue or an unpacked package folder "
                             "(repeatable). Default: the installed package files."),
    licence: Optional[str] = typer.Option(None, "--licence", help="Keep only these licences: cc0,cc-by,gpl,fal."),
    categories: Optional[str] = typer.Option(None, "--categories", "-c", help="Comma-separated category names."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most N models per category."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of sampling, views, splits and --limit choice."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Parallel worker processes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rebuild models that are already finished."),
    split: str = typer.Option("0.7/0.1/0.2", "--split", help="Train/val/test shares."),
    views: int = typer.Option(24, "--views", min=1, max=999, help="Renders per model."),
    points: int = typer.Option(100_000, "--points", min=8, help="Occupancy and surface samples per model."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="Another mapping table (YAML) than the shipped one."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Import Sweet Home 3D furniture, FlightGear aircraft and ships and TORCS cars as a dataset.

    Two commands: `apt-get download sweethome3d-furniture sweethome3d flightgear-data-ai
    flightgear-data-models torcs-data` then `recon data import all --from . -o data/real`.
    A rerun resumes. Problems with single models are warnings; the import goes on.
    """
    from recon_cli.data.importers.run import SOURCES, import_dataset
    from recon_cli.data.render import RenderOptions
    from recon_cli.errors import InputError

    names = [s.strip().lower() for s in source.split(",") if s.strip()]
    sources = list(SOURCES) if names == ["all"] else names
    for name in sources:
        if name not in SOURCES:
            raise InputError(f"unknown source {name!r}; valid: {', '.join(SOURCES)}, all")
    licences = [s.strip().lower() for s in licence.split(",") if s.strip()] if licence else None
    cats = [s.strip() for s in categories.split(",") if s.strip()] if categories else None
    render = RenderOptions(n_views=views)

    def warn(line: str) -> None:
        err_console.print(f"warning: {line}", style="yellow", markup=False, soft_wrap=True)

    with _progress("import") as progress:
        task = progress.add_task("import", total=None, last="")

        def on_progress(result) -> None:  # noqa: ANN001 - ModelResult
            state = "skipped" if result.skipped else ("ok" if result.ok else "FAILED")
            progress.update(task, completed=result.done, total=result.total, last=f"{result.model_id} {state}")
            for line in result.warnings:
                progress.console.print(f"warning: {line}", style="yellow", markup=False, soft_wrap=True)
            if not result.ok:
                progress.console.print(f"warning: {result.synset}/{result.model_id}: {result.error}; model skipped",
                                       style="yellow", markup=False, soft_wrap=True)

        report = import_dataset(sources, out, from_paths=from_paths or [], licences=licences, categories=cats,
                                limit=limit, seed=seed, workers=workers, overwrite=overwrite,
                                split=_parse_split(split), render=render, n_points=points, mapping_path=mapping,
                                on_progress=on_progress)
    for line in report.warnings:
        warn(line)
    if json_out:
        print_json(report.to_dict())
        return
    build = report.build
    for src, counts in sorted(report.counts.items()):
        err_console.print(f"{src}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), markup=False)
    err_console.print(f"{build.n_built} built, {build.n_skipped} already finished, {len(report.skipped)} left out "
                      f"(IMPORT_SKIPPED.csv) in {build.seconds:.1f} s -> {out}", markup=False)
    if build.n_built + build.n_skipped == 0:
        fail("no model could be imported")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Commands are attached to the `data` group defined in cli/data.py."""
    del app
