"""Run the ``recon serve`` application with uvicorn (the model loads in the worker thread)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from recon_cli.web.app import create_app
from recon_cli.web.jobs import JobQueue


def run_server(*, host: str = "127.0.0.1", port: int = 8000, max_bytes: int = 25_000_000, max_photos: int = 8,
               max_pixels: int = 40_000_000, max_pending: int = 16, load: dict[str, Any] | None = None,
               on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. ``load`` holds :func:`recon_cli.api.load_model` arguments."""
    import uvicorn

    from recon_cli.api import load_model

    options = dict(load or {})
    jobs = JobQueue(lambda: load_model(**options), max_pending=max_pending, max_pixels=max_pixels)
    jobs.warm_up()
    app = create_app(jobs, max_bytes=max_bytes, max_photos=max_photos)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # bound here so that port 0 can be reported
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, limit_concurrency=64,
                            timeout_keep_alive=5)
    server = uvicorn.Server(config)
    if on_ready is not None:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{bound}/")
    try:
        server.run(sockets=[sock])
    finally:
        jobs.close()
