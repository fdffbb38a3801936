"""`recon export-onnx`: export the networks to ONNX."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, guarded, print_json
from recon_cli.cli.options import threads_option, use_threads


def export_onnx(
    weights: Path = typer.Option(..., "--weights", "-w", help="A recon checkpoint (.pt)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (absent, empty, or an earlier export)."),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset version."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Compare onnxruntime (CPU) with torch on random inputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest (and check results) as JSON on stdout."),
    threads: int = threads_option(),
) -> None:
    """Export the image encoder, point encoder and decoders of a checkpoint as ONNX models.

    The folder gets one .onnx per network (dynamic batch and point-count axes) and
    recon_onnx.json; use it with `recon reconstruct --backend onnx --onnx-dir DIR`.
    """
    use_threads(threads)
    from recon_cli.errors import InputError
    from recon_cli.io.checkpoint import default_model, default_thresholds, load_checkpoint
    from recon_cli.runtime.onnx_export import MANIFEST_NAME, export_onnx as export, verify_export

    model, _cfg, extra = load_checkpoint(weights, device="cpu")
    with err_console.status("exporting...") as status:
        manifest = export(model, out, opset=opset, on_progress=lambda name: status.update(f"exporting {name}..."),
                          thresholds=default_thresholds(extra), default_model=default_model(extra))
    diffs: dict[str, float] | None = None
    if verify:
        try:
            diffs = verify_export(model, out)
        except InputError as exc:  # onnxruntime missing: the export itself is fine
            err_console.print(f"not verified: {exc}", markup=False)
    if as_json:
        print_json({"out": str(out), "manifest": manifest, "max_abs_diff": diffs})
        return
    for name, file in manifest["files"].items():
        size = (out / file).stat().st_size / 1e6
        line = f"  {file:<20} {size:8.2f} MB"
        if diffs is not None:
            line += f"   max |torch - onnxruntime| = {diffs[name]:.2e}"
        err_console.print(line, markup=False)
    err_console.print(f"wrote {out}/ ({manifest['model']}, {MANIFEST_NAME})", markup=False)


def register(app: typer.Typer) -> None:
    """Attach `export-onnx` to the root app."""
    app.command("export-onnx")(guarded(export_onnx))
