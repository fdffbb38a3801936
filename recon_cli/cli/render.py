"""`recon render`: pictures of meshes (one view, a turntable animation, a contact sheet)."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json

HELP = (
    "Render meshes to pictures with the built-in ray caster (no OpenGL, no display needed).\n\n"
    "One mesh: -o PICTURE (.png/.jpg/.webp) and/or --turntable ANIMATION (.gif, .png/.apng or .webp, one "
    "orbit). Several meshes (files or folders): --grid -o SHEET.png for a labelled contact sheet, or "
    "--out-dir DIR for one <stem>.png each. Meshes are framed by their bounding box; the viewpoint is a "
    "three-quarter view chosen automatically unless --azimuth/--elevation are given (azimuth 0 = camera on +z, 90 = on +x, the canonical front).\n\n"
    "\b\nExamples:\n"
    "  recon render chair.obj -o chair.png\n"
    "  recon render chair.obj -o chair.png --azimuth 90 --elevation 10 --size 800\n"
    "  recon render chair.obj --turntable chair.gif --frames 48\n"
    "  recon render meshes/ --grid -o sheet.png --columns 5\n"
)


def register(app: typer.Typer) -> None:
    """Attach ``recon render``."""

    @app.command("render", help=HELP)
    @guarded
    def render(
        meshes: list[Path] = typer.Argument(..., help="Mesh files (.obj .ply .stl .off .glb) or folders of them."),
        output: Path = typer.Option(None, "-o", "--output", help="Picture (one mesh) or contact sheet (--grid)."),
        out_dir: Path = typer.Option(None, "--out-dir", help="One <stem>.png per mesh in this folder."),
        turntable: Path = typer.Option(None, "--turntable", help="Write an orbit animation (.gif, .png/.apng, .webp)."),
        grid: bool = typer.Option(False, "--grid", help="Put all meshes on one labelled contact sheet (-o)."),
        size: int = typer.Option(512, "--size", min=16, max=4096, help="Picture side in pixels (tile side with --grid: 256)."),
        azimuth: float = typer.Option(None, "--azimuth", help="Camera azimuth in degrees (0 = on +z, 90 = on +x: the front)."),
        elevation: float = typer.Option(None, "--elevation", min=-89.0, max=89.0, help="Camera elevation in degrees."),
        frames: int = typer.Option(36, "--frames", min=2, max=720, help="Turntable frames per orbit."),
        seconds: float = typer.Option(4.0, "--seconds", min=0.1, max=120.0, help="Turntable orbit duration."),
        columns: int = typer.Option(None, "--columns", min=1, help="Contact sheet columns (default: square-ish)."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON document listing what was written."),
    ) -> None:
        from recon_cli.meshops import list_mesh_files

        files = list_mesh_files(meshes)
        if not files:
            raise typer.BadParameter("no mesh files found", param_hint="MESHES")
        if output is None and out_dir is None and turntable is None:
            raise typer.BadParameter("say where to write: -o PICTURE, --turntable ANIMATION or --out-dir DIR",
                                     param_hint="-o")
        if grid and output is None:
            raise typer.BadParameter("--grid needs -o SHEET.png", param_hint="--grid")
        if len(files) > 1 and not grid and out_dir is None:
            raise typer.BadParameter(f"{len(files)} meshes given: use --grid -o SHEET.png or --out-dir DIR",
                                     param_hint="-o")
        if turntable is not None and len(files) > 1:
            raise typer.BadParameter("--turntable animates one mesh", param_hint="--turntable")
        from recon_cli.preview import RenderRequest, run_render

        request = RenderRequest(files=files, output=output, out_dir=out_dir, turntable=turntable, grid=grid,
                                size=size if not grid or size != 512 else 256, azimuth=azimuth, elevation=elevation,
                                frames=frames, seconds=seconds, columns=columns)
        report = run_render(request)
        for problem in report.errors:
            fail(problem)
        if json_out:
            print_json({"written": [str(p) for p in report.written], "errors": report.errors})
        else:
            for path in report.written:
                err_console.print(f"wrote {path}", markup=False, soft_wrap=True)
        if report.errors:
            raise typer.Exit(1)
