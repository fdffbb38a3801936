"""The ``recon serve`` web application (FastAPI): a page, its static files and a small JSON API.

Routes:
    GET  /                               the page (static/index.html)
    GET  /static/{file}                  its script, viewer and style (served from the package: offline)
    GET  /api/limits                     upload limits, for the page to check files before sending
    POST /api/jobs                       multipart ``photos`` (1..max_photos files of ONE object) -> job status
    GET  /api/jobs/{id}                  status: state, phase, progress, queue position, error, mesh stats
    GET  /api/jobs/{id}/mask/{i}.png     photo i with the detected object highlighted
    GET  /api/jobs/{id}/input/{i}.png    photo i as the network sees it
    GET  /api/jobs/{id}/mesh.{fmt}       download: obj, stl, glb, ply
    GET  /api/jobs/{id}/viewer.bin       the mesh for the page's WebGL viewer

Uploads are refused before their body is read when the declared size is over
the limit (413) or undeclared (411); each photo is checked like a CLI input
(suffix, header, pixel count before decoding) before it is queued, and stored
under a generated name in the job's private temporary folder. Errors are JSON
``{"error": "one line"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from recon_cli.errors import InputError, ReconError
from recon_cli.io.inputs import IMAGE_SUFFIXES
from recon_cli.web.jobs import DOWNLOADS, JobQueue, Photo, safe_display_name

STATIC = Path(__file__).resolve().parent / "static"

#: Bytes of multipart framing allowed on top of the photos themselves.
_FORM_OVERHEAD = 64 * 1024


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_photo_header(path: Path, name: str, max_pixels: int) -> None:
    """Open the header only (no pixel decoding): a known image format within the pixel cap."""
    from recon_cli.io.images import _open  # the CLI's opener: bomb check, format check, one-line errors

    try:
        with _open(path) as image:
            width, height = image.size
    except ReconError as exc:
        raise InputError(exc.message, path=name) from exc
    if width * height > max_pixels:
        raise InputError(f"image too large: {width}x{height} = {width * height:,} pixels (limit {max_pixels:,})",
                         path=name)
    if width == 0 or height == 0:
        raise InputError("image has no pixels", path=name)


def create_app(jobs: JobQueue, *, max_bytes: int = 25_000_000, max_photos: int = 8) -> FastAPI:
    """The FastAPI application serving ``jobs``."""
    app = FastAPI(title="recon", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/limits")
    def limits() -> dict[str, Any]:
        return {"max_bytes": max_bytes, "max_photos": max_photos, "max_pixels": jobs.max_pixels,
                "suffixes": list(IMAGE_SUFFIXES), "formats": list(DOWNLOADS)}

    @app.post("/api/jobs")
    async def submit(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is None:
            return error(411, "the upload must declare its size (Content-Length)")
        try:
            size = int(declared)
        except ValueError:
            return error(400, "bad Content-Length")
        if size > max_bytes + _FORM_OVERHEAD:
            return error(413, f"upload too large: {_mb(size)} (limit {_mb(max_bytes)} for all photos together)")
        try:
            form = await request.form(max_files=max_photos, max_fields=4)
        except Exception as exc:  # noqa: BLE001 - malformed multipart, too many parts
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return error(400, f"cannot read the upload ({text}); at most {max_photos} photos")
        uploads = [item for key, item in form.multi_items() if key == "photos" and hasattr(item, "read")]
        if not uploads:
            await form.close()
            return error(400, "no photos in the upload (form field 'photos')")
        folder = jobs.new_folder()
        photos: list[Photo] = []
        try:
            total = 0
            for i, upload in enumerate(uploads):
                name = safe_display_name(upload.filename, i)
                suffix = Path(name).suffix.lower()
                if suffix not in IMAGE_SUFFIXES:
                    raise InputError(f"not a supported photo type (use {' '.join(IMAGE_SUFFIXES)})", path=name)
                data = await upload.read(max_bytes + 1)
                total += len(data)
                if total > max_bytes:
                    raise InputError(f"upload too large (limit {_mb(max_bytes)} for all photos together)",
                                     path=name)
                path = folder / f"photo-{i}{suffix}"
                path.write_bytes(data)
                check_photo_header(path, name, jobs.max_pixels)
                photos.append(Photo(name, path))
            job = jobs.submit(photos, folder)
        except ReconError as exc:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            return error(400, str(exc))
        finally:
            await form.close()
        return JSONResponse(jobs.status(job), status_code=202)

    def find(job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            raise _NotFound(f"no such job {job_id[:20]!r} (finished jobs are kept for a while only)")
        return job

    @app.exception_handler(_NotFound)
    async def not_found(_request: Request, exc: _NotFound) -> JSONResponse:
        return error(404, str(exc))

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        return jobs.status(find(job_id))

    @app.get("/api/jobs/{job_id}/mask/{index}.png")
    def mask(job_id: str, index: int) -> Response:
        job = find(job_id)
        if not 0 <= index < len(job.masks):
            return error(404, "no such mask")
        return Response(job.masks[index], media_type="image/png")

    @app.get("/api/jobs/{job_id}/input/{index}.png")
    def network_input(job_id: str, index: int) -> Response:
        job = find(job_id)
        if not 0 <= index < len(job.inputs):
            return error(404, "no such input")
        return Response(job.inputs[index], media_type="image/png")

    @app.get("/api/jobs/{job_id}/mesh.{fmt}")
    def download(job_id: str, fmt: str) -> Response:
        job = find(job_id)
        if fmt not in DOWNLOADS:
            return error(404, f"unknown format {fmt[:10]!r}; available: {', '.join(DOWNLOADS)}")
        if job.mesh is None:
            return error(409, "the mesh is not ready")
        stem = Path(job.photos[0].name).stem or "mesh"
        stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:60] or "mesh"
        return Response(jobs.mesh_file(job, fmt), media_type=DOWNLOADS[fmt][1],
                        headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})

    @app.get("/api/jobs/{job_id}/viewer.bin")
    def viewer(job_id: str) -> Response:
        job = find(job_id)
        if job.mesh is None:
            return error(409, "the mesh is not ready")
        return Response(jobs.viewer_data(job), media_type="application/octet-stream")

    return app


class _NotFound(Exception):
    """An unknown job id."""
