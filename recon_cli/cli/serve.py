"""`recon serve`: the local web page (thin: options -> recon_cli.web)."""

from __future__ import annotations

from pathlib import Path

import typer

from recon_cli.cli.common import err_console, guarded

HELP = (
    "Serve a local web page: drop photos of an object, see the detected mask and the progress, turn the mesh in "
    "a 3D viewer and download OBJ/STL/GLB/PLY. Works offline (nothing is loaded from the internet). Requests are "
    "queued and run one at a time with one model. Binds 127.0.0.1 (this machine only) unless --host says "
    "otherwise.\n\n"
    "\b\nExamples:\n"
    "  recon serve                      # http://127.0.0.1:8000\n"
    "  recon serve --port 9000 --threads 2 --quality draft\n"
)


def register(app: typer.Typer) -> None:
    """Attach ``recon serve``."""

    @app.command("serve", help=HELP)
    @guarded
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 exposes it to the network)."),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0 = any free port)."),
        weights: Path = typer.Option(None, "--weights", help="Checkpoint (default: the shipped weights)."),
        model: str = typer.Option("auto", "--model", help="auto, onet (image stage only) or doccnet."),
        quality: str = typer.Option("standard", "--quality", help="draft, standard or high lattice."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        threads: int = typer.Option(None, "--threads", min=1, help="Torch CPU threads (default: torch's choice)."),
        max_upload_mb: float = typer.Option(25.0, "--max-upload-mb", min=0.01, help="Limit of one upload (all photos)."),
        max_photos: int = typer.Option(8, "--max-photos", min=1, max=64, help="Photos per object."),
        max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Pixels per photo (checked before decoding)."),
        max_pending: int = typer.Option(16, "--max-queue", min=1, help="Jobs that may wait in the queue."),
    ) -> None:
        try:
            import fastapi  # noqa: F401
            import uvicorn
        except ImportError as exc:
            from recon_cli.errors import ConfigError

            raise ConfigError(f"recon serve needs the web extra ({exc.name} is missing): "
                              "pip install 'recon-cli[web]'") from None
        from recon_cli.web.server import run_server

        if host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"warning: binding {host}: anyone who can reach this machine can use the page",
                              style="yellow", markup=False)
        run_server(host=host, port=port, max_bytes=int(max_upload_mb * 1e6), max_photos=max_photos,
                   max_pixels=max_pixels, max_pending=max_pending,
                   load=dict(weights=weights, model=model, quality=quality, device=device, threads=threads,
                             max_pixels=max_pixels),
                   on_ready=lambda url: err_console.print(f"recon serve: open {url}  (Ctrl-C stops)", markup=False))
