"""`recon data ...`: dataset commands (check, build, synth, preview)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json

data_app = typer.Typer(help="Build, generate and validate datasets in the ShapeNet layout.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `data` command group to the root app."""
    app.add_typer(data_app, name="data")


def _progress(label: str):  # noqa: ANN202 - rich Progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[last]}"))
    return Progress(*columns, console=err_console, transient=True)


@data_app.command("check")
@guarded
def check(
    root: Path = typer.Argument(..., help="Dataset root (holds metadata.yaml and one folder per synset)."),
    full: bool = typer.Option(False, "--full", help="Also load every array and decode every image (slower)."),
    max_issues: int = typer.Option(50, "--max-issues", min=0, help="Issues listed in the human output."),
    json_out: bool = typer.Option(False, "--json", help="Print the whole report as one JSON document."),
) -> None:
    """Validate a dataset: layout, npz keys/shapes/dtypes, renders, cameras, split files.

    Exit code 1 when any error is found. Example: recon data check data/ShapeNet --full
    """
    from rich.console import Console
    from rich.table import Table

    from recon_cli.data.check import check_dataset

    with _progress("check") as progress:
        task = progress.add_task("check", total=None, last="")
        report = check_dataset(root, full=full,
                               on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    if json_out:
        print_json(report.to_dict())
    else:
        out = Console(highlight=False)
        table = Table(title=f"{root}")
        for col in ("synset", "name", "train", "val", "test", "models", "with errors"):
            table.add_column(col, justify="left" if col in ("synset", "name") else "right")
        for c in report.categories:
            table.add_row(c.synset, c.name, str(c.train), str(c.val), str(c.test), str(c.models),
                          f"[red]{c.bad_models}[/red]" if c.bad_models else "0")
        out.print(table)
        for issue in report.issues[:max_issues]:
            style = "red" if issue.level == "error" else "yellow"
            out.print(f"{issue.level}: {issue}", style=style, markup=False, soft_wrap=True)
        if len(report.issues) > max_issues:
            out.print(f"... {len(report.issues) - max_issues} more issue(s) (use --json for all)", markup=False)
    if not report.ok:
        fail(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {report.n_models} model(s): {root}")
        raise typer.Exit(1)
    if not json_out:
        err_console.print(f"ok: {report.n_models} model(s), {len(report.warnings)} warning(s)", style="green",
                          markup=False)


def _parse_split(text: str) -> tuple[float, float, float]:
    from recon_cli.errors import InputError

    parts = text.replace(",", "/").split("/")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"--split must look like 0.7/0.1/0.2, got {text!r}") from None
    if len(values) != 3:
        raise InputError(f"--split needs three shares train/val/test, got {text!r}")
    return values  # type: ignore[return-value]


@data_app.command("build")
@guarded
def build(
    meshes_dir: Path = typer.Argument(..., help="Folder of meshes: one subfolder per category, or flat with --category."),
    out: Path = typer.Option(..., "-o", "--out", help="Dataset root to write (created if missing)."),
    category: Optional[str] = typer.Option(
        None, "--category", "-c", help="Category of a flat folder: a name (chair, ...), a synset id or a new name."),
    split: str = typer.Option("0.7/0.1/0.2", "--split", help="Train/val/test shares."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of sampling, views and splits."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Parallel worker processes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rebuild models that are already finished."),
    views: int = typer.Option(24, "--views", min=1, max=999, help="Renders per model."),
    size: int = typer.Option(137, "--size", min=16, max=1024, help="Render side in pixels."),
    points: int = typer.Option(100_000, "--points", min=8, help="Occupancy and surface samples per model."),
    randomize: bool = typer.Option(False, "--randomize", help="Domain randomisation: light, colour, background."),
    frame: str = typer.Option("shapenet-v1", "--frame",
                              help="Source frame of the meshes: shapenet-v1 (+y up, front +x: as is) or "
                                   "shapenet-v2 (+y up, front -z, ShapeNetCore v2 model_normalized.obj)."),
    up: Optional[str] = typer.Option(None, "--up", help="Up axis of the meshes (+x..-z); overrides --frame."),
    front: Optional[str] = typer.Option(None, "--front", help="Front axis of the meshes (+x..-z); overrides --frame."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Turn a folder of meshes (OBJ, OFF, PLY, STL, GLB) into a dataset in the ShapeNet layout.

    Meshes are turned from their source frame (--frame, --up, --front) into the canonical frame
    (+y up, front +x) before normalisation.

    A rerun skips finished models (resume). Exit code 1 when any model failed.
    Example: recon data build my_meshes/ -o data/mine --workers 2
    """
    from recon_cli.data.build import build_from_folder
    from recon_cli.data.frame import resolve_frame
    from recon_cli.data.render import RenderOptions

    shares = _parse_split(split)
    rotation = resolve_frame(frame, up, front)
    render = RenderOptions(size=size, n_views=views, randomize=randomize)
    failures: list[str] = []
    with _progress("build") as progress:
        task = progress.add_task("build", total=None, last="")

        def on_progress(result) -> None:  # noqa: ANN001 - ModelResult
            state = "skipped" if result.skipped else ("ok" if result.ok else "FAILED")
            progress.update(task, completed=result.done, total=result.total, last=f"{result.model_id} {state}")
            if not result.ok:
                failures.append(f"{result.synset}/{result.model_id}: {result.error}")
                progress.console.print(f"error: {failures[-1]}", style="bold red", markup=False, soft_wrap=True)

        report = build_from_folder(meshes_dir, out, category=category, split=shares, seed=seed, workers=workers,
                                   overwrite=overwrite, render=render, n_points=points, rotation=rotation,
                                   on_progress=on_progress)
    if json_out:
        print_json(report.to_dict())
    else:
        err_console.print(f"{report.n_built} built, {report.n_skipped} already finished, {len(report.failed)} failed "
                          f"in {report.seconds:.1f} s -> {out}", markup=False, style="red" if report.failed else None)
    if report.failed:  # each failed model already has its own error line
        raise typer.Exit(1)


@data_app.command("photos")
@guarded
def photos(
    root: Path = typer.Argument(..., help="Dataset root (ShapeNet layout)."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write images/, masks/ and index.json into."),
    split: str = typer.Option("test", "--split", help="Split whose models are pictured: train, val or test."),
    per_model: int = typer.Option(8, "--per-model", "-n", min=1, help="Photo-like images per model."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the randomisation: the same seed gives the same set."),
    synth_seed: Optional[int] = typer.Option(
        None, "--synth-seed", min=0, help="For procedural datasets: the --seed of `recon data synth` (meshes regenerated)."),
    meshes: Optional[Path] = typer.Option(None, "--meshes", help="Folder holding the models' meshes (<model_id>.<ext>)."),
    textures: Optional[Path] = typer.Option(None, "--textures", help="Folder of texture images: an extra background family."),
    size: int = typer.Option(256, "--size", min=32, max=2048, help="Longer side of each image in pixels."),
    categories: Optional[str] = typer.Option(None, "--categories", "-c", help="Comma-separated names or synset ids."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON report on stdout."),
) -> None:
    """Write a photo-like test set: renders of a split's models over held-out backgrounds, with true masks.

    Backgrounds are procedural families (and --textures images) from a seed stream, and two families,
    never used for training; random light, camera, crop, blur, noise and JPEG (see recon_cli.data.photos).
    Example: recon data photos data/synth -o data/photos_test --synth-seed 0 --per-model 8
    """
    from recon_cli.data.photos import PhotoOptions, list_textures, write_photo_set

    with _progress("photos") as progress:
        task = progress.add_task("photos", total=None, last="")
        report = write_photo_set(
            root, out, split=split, per_model=per_model, seed=seed, synth_seed=synth_seed, meshes=meshes,
            textures=list_textures(textures) if textures is not None else None, options=PhotoOptions(size=size),
            categories=[c for c in categories.split(",") if c.strip()] if categories else None,
            on_progress=lambda done, total, last: progress.update(task, completed=done, total=total, last=last))
    if json_out:
        print_json(report.to_dict())
    else:
        err_console.print(f"{report.images} images of {report.models} models in {report.seconds:.1f} s -> {out}",
                          markup=False)
    for line in report.failed:
        fail(line)
    if report.failed:
        raise typer.Exit(1)
