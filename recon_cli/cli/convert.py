"""`recon convert` and `recon info`: mesh conversion and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json

_ROWS: tuple[tuple[str, str], ...] = (
    ("vertices", "vertices"), ("faces", "faces"), ("watertight", "watertight"),
    ("winding_consistent", "winding consistent"), ("volume", "volume"), ("area", "area"),
    ("bodies", "bodies"), ("degenerate_faces", "degenerate faces"), ("duplicate_faces", "duplicate faces"),
    ("extents", "extents"), ("bounds", "bounds"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "  ".join(_fmt(v) for v in value) if not value or not isinstance(value[0], list) else \
            " .. ".join("(" + ", ".join(_fmt(v) for v in row) + ")" for row in value)
    return str(value)


def _table(title: str, columns: dict[str, dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("")
    for name in columns:
        table.add_column(name, justify="right")
    for key, label in _ROWS:
        table.add_row(label, *(_fmt(report.get(key)) for report in columns.values()))
    return table


def _size_option(value: str | None) -> Any:
    if value is None:
        return None
    from recon_cli.errors import InputError
    from recon_cli.meshops import parse_size

    try:
        return parse_size(value)
    except InputError as exc:
        raise typer.BadParameter(exc.message) from None


def _up_option(value: str) -> str:
    if value.lower() not in ("y", "z"):
        raise typer.BadParameter(f"{value!r} is not one of y, z")
    return value.lower()


def convert(
    paths: list[Path] = typer.Argument(
        ..., metavar="PATHS...", help="IN OUT for one file; with --out-dir: any number of input files and folders."),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", "-O", help="Batch mode: write <input stem>.<format> here.", file_okay=False),
    fmt: str | None = typer.Option(
        None, "--format", "-f",
        help="obj, ply, ply_ascii, stl, stl_ascii, off, glb (default: from OUT's suffix; required with --out-dir)."),
    ascii: bool = typer.Option(False, "--ascii", help="Write STL/PLY as text instead of binary."),
    size: str | None = typer.Option(
        None, "--size", callback=_size_option, metavar="LENGTH",
        help="Scale so the longest side is LENGTH (mm, cm, m, in; e.g. 120mm, 12cm). Written in millimetres "
             "(metres for GLB), the unit slicers assume."),
    up: str = typer.Option("y", "--up", callback=_up_option, help="Output up axis: y (as recon writes) or z "
                           "(3D printers/CAD; rotates +y to +z)."),
    simplify: int | None = typer.Option(
        None, "--simplify", min=4, metavar="FACES", help="Quadric decimation to about FACES triangles."),
    repair: bool = typer.Option(
        False, "--repair", help="Merge vertices, drop degenerate/duplicate faces, fix winding and normals, "
                                "fill small holes; prints a before/after report."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document on stdout."),
) -> None:
    """Convert meshes between OBJ, PLY, STL, OFF and GLB, optionally repaired, simplified and scaled.

    Examples: `recon convert chair.obj chair.stl --size 120mm --up z --repair`;
    `recon convert meshes/ --out-dir stl/ --format stl`.
    """
    from recon_cli.errors import InputError
    from recon_cli.io.paths import check_output_file, check_output_folder
    from recon_cli.meshops import ConvertOptions, convert_mesh, list_mesh_files

    options = ConvertOptions(repair=repair, simplify_faces=simplify, up=up, size=size, ascii=ascii)
    if out_dir is None:
        if len(paths) != 2:
            raise typer.BadParameter("give IN OUT, or input files/folders with --out-dir DIR --format F",
                                     param_hint="PATHS")
        if paths[0].is_dir():
            raise typer.BadParameter(f"{paths[0]} is a folder: use --out-dir DIR --format F", param_hint="PATHS")
        check_output_file(paths[1])
        result = convert_mesh(paths[0], paths[1], fmt=fmt, options=options)
        if as_json:
            print_json(result.to_dict())
            return
        err_console.print(f"wrote {result.target} ({result.after['faces']} faces, "
                          f"{result.after['vertices']} vertices)", markup=False)
        if repair:
            err_console.print(_table(str(paths[0]), {"before": result.before, "after": result.after}))
        return
    if fmt is None:
        raise typer.BadParameter("--format is required with --out-dir", param_hint="--format")
    check_output_folder(out_dir)
    if not list_mesh_files(paths):
        raise InputError("no mesh files found in " + ", ".join(map(str, paths)))
    _run_batch(paths, out_dir, fmt, options, as_json=as_json)


def _run_batch(paths: list[Path], out_dir: Path, fmt: str, options: Any, *, as_json: bool) -> None:
    from recon_cli.meshops import convert_batch

    def show(result: Any) -> None:
        if not result.ok:
            fail(result.error)
        elif not as_json:
            err_console.print(f"{result.source} -> {result.target} ({result.after['faces']} faces)", markup=False)

    results = convert_batch(paths, out_dir, fmt, options=options, on_result=show)
    failed = sum(not r.ok for r in results)
    if as_json:
        print_json({"results": [r.to_dict() for r in results], "converted": len(results) - failed, "failed": failed})
    else:
        err_console.print(f"{len(results) - failed} converted, {failed} failed", markup=False)
    if failed:
        raise typer.Exit(1)


def info(
    path: Path = typer.Argument(..., help="A mesh file (OBJ, PLY, STL, OFF, GLB/glTF)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON document on stdout."),
) -> None:
    """Report a mesh: vertices, faces, watertightness, volume, bounds."""
    from rich.console import Console

    from recon_cli.meshops import file_report

    report = file_report(path)
    if as_json:
        print_json(report)
        return
    Console(highlight=False).print(_table(f"{path} ({report['format']})", {"value": report}))


def register(app: typer.Typer) -> None:
    """Attach `convert` and `info` to the root app."""
    app.command("convert")(guarded(convert))
    app.command("info")(guarded(info))
