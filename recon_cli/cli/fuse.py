"""`recon reconstruct --fuse / --fuse-by`: several photos of one object -> one mesh (thin CLI layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def check_fuse_usage(*, points: list[Path], mask: Path | None, save_input: bool, save_mask: bool,
                     shard: str | None, output: Path | None, out_dir: Path | None) -> None:
    """Options that make no sense with fusion are usage errors (exit code 2)."""
    for given, name in ((points, "--points"), (mask, "--mask"), (save_input, "--save-input"),
                        (save_mask, "--save-mask"), (shard, "--shard")):
        if given:
            raise typer.BadParameter(f"{name} cannot be combined with --fuse/--fuse-by", param_hint=name)
    if output is not None and out_dir is not None:
        raise typer.BadParameter("give either -o (one output file) or --out-dir (a folder), not both", param_hint="-o")


def run_fused(inputs: list[str], *, fuse_by: str | None, fusion: str | None, output: Path | None,
              out_dir: Path | None, fmt: str | None, recursive: bool, load: dict[str, Any], skip_existing: bool,
              save_stages: bool, preview: bool, json_out: bool) -> None:
    """Group the photos, load the model through the Python API, reconstruct and report like the plain command."""
    from recon_cli.api import load_model
    from recon_cli.cli.reconstruct import _Display, finish_report
    from recon_cli.multiview import group_inputs, reconstruct_groups

    if not inputs:
        raise typer.BadParameter("give the photos to fuse", param_hint="INPUTS")
    groups = group_inputs(inputs, fuse_by=fuse_by, recursive=recursive)
    model = load_model(**load)
    display = _Display(quiet=json_out)
    display.start(len(groups))
    try:
        report = reconstruct_groups(groups, model, output=output, out_dir=out_dir, fmt=fmt, fusion=fusion,
                                    skip_existing=skip_existing, save_stages=save_stages, preview=preview,
                                    on_result=display.result)
    finally:
        display.stop()
    finish_report(report, json_out=json_out)
