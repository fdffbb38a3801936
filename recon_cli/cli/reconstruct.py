"""`recon reconstruct`: photos (or point clouds) to meshes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from recon_cli.cli.common import err_console, fail, guarded, print_json
from recon_cli.cli.common import one_of as _one_of
from recon_cli.cli.options import PRECISION_HELP, threads_option, use_threads
from recon_cli.io.choices import FUSION_STRATEGIES as FUSIONS
from recon_cli.io.choices import SEGMENT_METHODS

HELP = (
    "Reconstruct 3D meshes from photos with D-OccNet (image -> OccNet mesh -> 300 points -> final mesh).\n\n"
    "Inputs are image files, folders (--recursive for subfolders) or quoted globs. One input writes to -o "
    "(format from its suffix); many write to --out-dir, named after the inputs with subfolders mirrored; "
    "with neither, each mesh lands next to its image. Opaque photos are segmented (--segment: the border "
    "model for plain backdrops, GrabCut for cluttered scenes); RGBA images use their alpha; --mask FILE gives the "
    "mask yourself. A photo where no confident object is found fails (suggesting --mask) instead of using the "
    "whole frame. A file that fails is reported by name and "
    "the rest go on; the exit code is 1 if any failed.\n\n"
    "\b\nExamples:\n"
    "  recon reconstruct chair.png -o chair.obj\n"
    "  recon reconstruct photos/ --recursive --out-dir meshes --format ply --quality high\n"
    "  recon reconstruct \"shots/*.jpg\" --out-dir meshes --save-stages --json\n"
    "  recon reconstruct --points scan.ply -o scan_mesh.obj\n"
)

QUALITIES = ("draft", "standard", "high")
FORMATS = ("obj", "ply", "stl", "off", "glb")


def _probability(value: float | None) -> float | None:
    if value is not None and not 0.0 < value < 1.0:
        raise typer.BadParameter(f"must be a probability strictly between 0 and 1, got {value}")
    return value


def _usage(message: str, hint: str) -> None:
    raise typer.BadParameter(message, param_hint=hint)


def _check_usage(inputs: list[str], points: list[Path], output: Path | None, out_dir: Path | None,
                 mask: Path | None = None) -> None:
    """Usage errors (exit code 2) that can be seen before any file is read."""
    from recon_cli.io.inputs import has_glob

    if inputs and points:
        _usage("give images or --points clouds, not both", "--points")
    if not inputs and not points:
        _usage("give at least one image, folder or glob (or --points CLOUD)", "INPUTS")
    if mask is not None and (points or len(inputs) != 1 or Path(inputs[0]).is_dir() or
                             (not Path(inputs[0]).exists() and has_glob(inputs[0]))):
        _usage("--mask is the mask of one photo: give exactly one input image", "--mask")
    if output is not None and out_dir is not None:
        _usage("give either -o (one output file) or --out-dir (a folder), not both", "-o")
    if output is not None:
        specs = [str(p) for p in points] or inputs
        if len(specs) > 1:
            _usage(f"-o names one output file but {len(specs)} inputs were given; use --out-dir DIR", "-o")
        (spec,) = specs
        if Path(spec).is_dir():
            _usage(f"-o names one output file but {spec} is a folder (of any number of images); "
                   "use --out-dir DIR", "-o")
        if not Path(spec).exists() and has_glob(spec):
            _usage(f"-o names one output file but {spec} is a pattern (of any number of files); "
                   "use --out-dir DIR", "-o")


def _extract_settings(quality: str | None, resolution: int | None, steps: int | None) -> tuple[int, int]:
    from recon_cli.pipeline import QUALITY_PRESETS

    base_res, base_steps = QUALITY_PRESETS[quality or "standard"]
    return (resolution if resolution is not None else base_res, steps if steps is not None else base_steps)


class _Display:
    """Progress bar with ETA on stderr, one line per failure or warning."""

    def __init__(self, *, quiet: bool) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.quiet = quiet
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]reconstructing"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.description}"),
            console=err_console, transient=True,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("", total=total)

    def result(self, result: Any) -> None:
        console = self.progress.console
        for warning in result.warnings:
            console.print(f"warning: {result.input}: {warning}", style="yellow", markup=False, soft_wrap=True)
        if result.error is not None:
            console.print(f"error: {result.error}", style="bold red", markup=False, soft_wrap=True)
        elif not self.quiet:
            if result.skipped:
                console.print(f"skipped {result.input}: {result.output} exists", markup=False, soft_wrap=True)
            else:
                tight = "watertight" if result.watertight else "not watertight"
                console.print(f"{result.input} -> {result.output} ({result.vertices} vertices, {result.faces} faces, "
                              f"{tight}, {result.seconds:.2f} s)", markup=False, soft_wrap=True)
        if self.task is not None:
            self.progress.update(self.task, advance=1, description=Path(result.input).name)

    def stop(self) -> None:
        self.progress.stop()


def register(app: typer.Typer) -> None:
    """Attach ``recon reconstruct``."""

    @app.command("reconstruct", help=HELP)
    @guarded
    def reconstruct(
        inputs: list[str] = typer.Argument(None, help="Image files, folders or globs.", show_default=False),
        output: Path = typer.Option(None, "-o", "--output", help="Output mesh file (one input only)."),
        out_dir: Path = typer.Option(None, "--out-dir", help="Output folder for many inputs (subfolders mirrored)."),
        recursive: bool = typer.Option(False, "--recursive", "-r", help="Search folders (and ** globs) recursively."),
        fmt: str = typer.Option(None, "--format", callback=_one_of(FORMATS), metavar="obj|ply|stl|off|glb",
                                help="Mesh format (default: from the -o suffix, else obj)."),
        model: str = typer.Option("auto", "--model", callback=_one_of(["auto", "onet", "onet-pcl", "doccnet", "blend", "r2n2"]),
                                  metavar="auto|onet|onet-pcl|doccnet|blend|r2n2",
                                  help="Stages to run: onet = image stage only; doccnet = both; blend = both, the "
                                       "final surface cut from stage 2's and stage 1's occupancy blended; auto = "
                                       "what the weights measured best (the shipped ones: blend); r2n2 = the 3D-R2N2 voxel model (weights/r2n2.pt; --fuse feeds it "
                                       "all views)."),
        weights: Path = typer.Option(None, "--weights", help="Checkpoint (default: the shipped weights/doccnet.pt, "
                                                             "or weights/r2n2.pt with --model r2n2)."),
        quality: str = typer.Option(None, "--quality", callback=_one_of(QUALITIES), metavar="draft|standard|high",
                                    help="draft (65^3), standard (129^3, default) or high (257^3) lattice."),
        resolution: int = typer.Option(None, "--resolution", min=2, help="Coarse MISE resolution (overrides --quality)."),
        upsampling_steps: int = typer.Option(None, "--upsampling-steps", min=0, max=5,
                                             help="MISE upsampling steps (overrides --quality)."),
        threshold: float = typer.Option(None, "--threshold", callback=_probability,
                                        help="Occupancy probability of the surface (default: the one stored "
                                             "in the weights, tuned on validation; else 0.2)."),
        device: str = typer.Option("auto", "--device", callback=_one_of(["auto", "cpu", "cuda"]), metavar="auto|cpu|cuda",
                                   help="auto = CUDA when available."),
        batch_size: int = typer.Option(None, "--batch-size", min=1,
                                       help="Images per forward/MISE batch (default: 1 on the CPU, 4 on a GPU)."),
        skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip inputs whose output exists."),
        save_stages: bool = typer.Option(False, "--save-stages",
                                         help="Also write <stem>.stage1.<ext> and <stem>.points.ply."),
        save_input: bool = typer.Option(False, "--save-input", help="Also write the network input <stem>.input.png."),
        points: list[Path] = typer.Option(None, "--points", metavar="CLOUD",
                                          help="Reconstruct a point cloud (.ply/.xyz/.npy/.npz/.obj/.off) with stage 2."),
        simplify: int = typer.Option(None, "--simplify", min=4, metavar="FACES", help="Simplify meshes to about FACES faces."),
        segment: str = typer.Option("auto", "--segment", callback=_one_of(SEGMENT_METHODS),
                                    metavar="|".join(SEGMENT_METHODS),
                                    help="Object mask of opaque photos: border (plain backdrops), grabcut or model (the "
                                         "learned mask network; cluttered scenes), auto (border or model), none (whole "
                                         "photo, unframed). RGBA alpha is used first."),
        mask: Path = typer.Option(None, "--mask", metavar="FILE",
                                  help="The object's mask for the one input photo (same size; object = non-zero)."),
        save_mask: bool = typer.Option(False, "--save-mask",
                                       help="Also write <stem>_mask.png, the mask used, in the photo's pixel grid."),
        remove_bg: bool = typer.Option(True, "--remove-bg/--no-remove-bg", hidden=True,
                                       help="--no-remove-bg is the same as --segment none (kept for old scripts)."),
        backend: str = typer.Option("auto", "--backend", callback=_one_of(["auto", "torch", "onnx"]),
                                    metavar="auto|torch|onnx",
                                    help="Runtime: torch, onnxruntime (the checkpoint is exported once into "
                                         "~/.cache/recon/onnx, or give --onnx-dir), or auto (the faster here: torch)."),
        onnx_dir: Path = typer.Option(None, "--onnx-dir", help="Folder made by `recon export-onnx` (--backend onnx)."),
        shard: str = typer.Option(None, "--shard", help="Process only shard I of N (I/N, 0-based)."),
        threads: int = threads_option(),
        precision: str = typer.Option("auto", "--precision",
                                      callback=_one_of(["auto", "float32", "mixed", "bfloat16"]),
                                      metavar="auto|float32|mixed|bfloat16", help=PRECISION_HELP),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON document with per-file results on stdout."),
        fuse: bool = typer.Option(False, "--fuse", help="All photos show ONE object: fuse them into one mesh."),
        fuse_by: str = typer.Option(None, "--fuse-by", metavar="folder|REGEX",
                                    help="Batches of objects: one per folder, or per file-name regex group "
                                         "(e.g. '^(.+)_\\d+' groups sofa_1.jpg, sofa_2.jpg)."),
        fusion: str = typer.Option(None, "--fusion", callback=_one_of(FUSIONS), metavar="|".join(FUSIONS),
                                   help="How views are fused (default logits: mean occupancy logits)."),
        preview: bool = typer.Option(False, "--preview", help="Also render <stem>.png beside each mesh."),
    ) -> None:
        threads = use_threads(threads)
        inputs = list(inputs or [])
        points = list(points or [])
        if fuse or fuse_by is not None:
            from recon_cli.cli.fuse import check_fuse_usage, run_fused

            check_fuse_usage(points=points, mask=mask, save_input=save_input, save_mask=save_mask, shard=shard,
                             output=output, out_dir=out_dir)
            res, steps = _extract_settings(quality, resolution, upsampling_steps)
            load = dict(weights=weights, device=device, model="auto" if model == "onet-pcl" else model,
                        resolution=res, upsampling_steps=steps, threshold=threshold, simplify=simplify,
                        segment=segment if remove_bg else "none", backend=backend, onnx_dir=onnx_dir)
            run_fused(inputs, fuse_by=fuse_by, fusion=fusion, output=output, out_dir=out_dir, fmt=fmt,
                      recursive=recursive, load=load, skip_existing=skip_existing, save_stages=save_stages,
                      preview=preview, json_out=json_out)
            return
        _check_usage(inputs, points, output, out_dir, mask)
        from recon_cli.cli.eval import parse_shard
        from recon_cli.reconstruct import ReconstructOptions, reconstruct_files

        res, steps = _extract_settings(quality, resolution, upsampling_steps)
        options = ReconstructOptions(
            model=model, weights=weights, backend=backend, onnx_dir=onnx_dir, device=device,
            resolution=res, upsampling_steps=steps, threshold=threshold, simplify_faces=simplify,
            batch_size=batch_size, fmt=fmt, recursive=recursive, skip_existing=skip_existing,
            save_stages=save_stages, save_input=save_input, remove_bg=remove_bg, segment=segment, mask=mask,
            save_mask=save_mask, shard=parse_shard(shard),
            threads=threads, precision=precision,
        )
        display = _Display(quiet=json_out)
        try:
            report = reconstruct_files(inputs, output=output, out_dir=out_dir, points=points, options=options,
                                       on_start=display.start, on_result=display.result)
        finally:
            display.stop()
        if preview:
            from recon_cli.preview import write_previews

            for problem in write_previews(report.results):
                fail(problem)
        finish_report(report, json_out=json_out)


def finish_report(report: Any, *, json_out: bool) -> None:
    """Print the JSON document or the summary line (naming failures); exit code 1 when anything failed."""
    failed = report.failed
    if json_out:
        print_json(report.to_dict())
    else:
        summary = report.to_dict()["summary"]
        line = (f"{summary['ok']} reconstructed, {summary['skipped']} skipped, {summary['failed']} failed "
                f"in {report.seconds:.1f} s")
        if failed:  # each failure already has its own error line above
            line += (": " + ", ".join(Path(r.input.split(", ")[0]).name for r in failed[:5])
                     + (" ..." if len(failed) > 5 else ""))
        err_console.print(line, markup=False, style="red" if failed else None)
    if failed:
        raise typer.Exit(1)
