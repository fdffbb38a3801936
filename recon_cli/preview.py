"""Pictures of meshes: one shaded view, a turntable animation, a contact sheet (``recon render``).

Everything is drawn by the project's embree ray caster (:mod:`recon_cli.data.render`,
no OpenGL): Lambertian shading with a key and a fill light fixed to the camera,
the mesh's own face or vertex colours when it has any, a cool light grey
otherwise, anti-aliased edges, on white. Meshes are framed by their bounding
box (centre at the origin, longest side 1, the reconstruction frame), so a mesh
in millimetres looks the same as one in the unit cube.

Viewpoints (as :func:`recon_cli.data.render.look_at`): azimuth 0 puts the camera
on the +z axis (the side of an object in the canonical frame), azimuth 90 on +x
(facing its front); elevation is the camera's angle above the horizon. The
automatic viewpoint tries the four three-quarter views (azimuth 45, 135, -45 and
-135 degrees, 25 degrees up) on a small silhouette render and keeps the one that
shows the clearly largest area (the front ones win ties), so a picture is never
edge-on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from recon_cli.data.render import RenderOptions, intrinsics, look_at, render_image
from recon_cli.errors import InputError, ReconError
from recon_cli.io.atomic import atomic_path

#: Colour of meshes without colours of their own (a light blue-grey).
MESH_GREY = (178, 184, 194)

#: Azimuths tried by the automatic viewpoint, and its elevation.
AUTO_AZIMUTHS: tuple[float, ...] = (45.0, 135.0, 315.0, 225.0)
AUTO_ELEVATION = 25.0

#: Animation formats by file suffix.
ANIMATION_SUFFIXES: tuple[str, ...] = (".gif", ".png", ".apng", ".webp")


@dataclass(frozen=True)
class View:
    """A camera on a sphere around the (framed) mesh."""

    azimuth: float = 35.0
    elevation: float = 25.0
    distance: float = 1.6  # in units of the mesh's longest side; 1.6 frames it like the training renders


def framed(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy of ``mesh`` with its bounding box centred at the origin and its longest side 1.

    Meshes without colours get :data:`MESH_GREY`. Raises InputError for an empty mesh.
    """
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise InputError("the mesh has no faces")
    out = mesh.copy()
    extent = float(np.ptp(out.vertices, axis=0).max())
    if not np.isfinite(extent) or extent <= 0:
        raise InputError("the mesh has no extent (all vertices coincide)")
    out.apply_translation(-out.bounds.mean(axis=0))
    out.apply_scale(1.0 / extent)
    if getattr(out.visual, "kind", None) is None:
        out.visual.face_colors = (*MESH_GREY, 255)
    return out


def _render(mesh: trimesh.Trimesh, view: View, size: int, *, antialias: bool = True) -> np.ndarray:
    options = RenderOptions(size=size, antialias=antialias, distance=view.distance)
    K = intrinsics(size, options.focal)
    Rt = look_at(view.azimuth, view.elevation, view.distance)
    return render_image(mesh, K, Rt, size=size, options=options)


def auto_view(mesh: trimesh.Trimesh, *, elevation: float = AUTO_ELEVATION) -> View:
    """The view of :data:`AUTO_AZIMUTHS` showing the largest silhouette of a framed mesh."""
    best, best_area = View(AUTO_AZIMUTHS[0], elevation), -1
    for azimuth in AUTO_AZIMUTHS:
        view = View(azimuth, elevation)
        area = int((_render(mesh, view, 48, antialias=False) < 250).any(axis=-1).sum())
        if area > 1.03 * best_area:  # a clearly larger view; ties keep the earlier (front) azimuth
            best, best_area = view, area
    return best


def render_mesh(mesh: trimesh.Trimesh, *, size: int = 512, view: View | None = None) -> Image.Image:
    """One shaded picture (RGB, ``size`` x ``size``) of ``mesh`` from ``view`` (automatic when None)."""
    if size < 16:
        raise InputError(f"picture size must be at least 16 pixels, got {size}")
    mesh = framed(mesh)
    return Image.fromarray(_render(mesh, view or auto_view(mesh), size))


def turntable_frames(mesh: trimesh.Trimesh, *, frames: int = 36, size: int = 320, elevation: float = AUTO_ELEVATION,
                     start: float | None = None) -> list[Image.Image]:
    """``frames`` pictures of one full orbit, starting at ``start`` (the automatic azimuth when None)."""
    if frames < 2:
        raise InputError(f"a turntable needs at least 2 frames, got {frames}")
    mesh = framed(mesh)
    first = auto_view(mesh, elevation=elevation).azimuth if start is None else start
    return [Image.fromarray(_render(mesh, View(first + 360.0 * i / frames, elevation), size)) for i in range(frames)]


def save_animation(frames: Sequence[Image.Image], path: str | Path, *, seconds: float = 4.0) -> Path:
    """Write ``frames`` as a looping animation (GIF, APNG for .png/.apng, or WebP), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InputError(f"unsupported animation suffix {suffix or '(none)'!r}; use one of "
                         f"{', '.join(ANIMATION_SUFFIXES)}", path=path)
    fmt = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}[suffix]
    duration = max(20, int(round(1000.0 * seconds / len(frames))))
    first, rest = frames[0], list(frames[1:])
    extra = {"optimize": True, "disposal": 1} if fmt == "GIF" else {}
    with atomic_path(path) as tmp:
        first.save(tmp, format=fmt, save_all=True, append_images=rest, duration=duration, loop=0, **extra)
    return path


def save_picture(image: Image.Image, path: str | Path) -> Path:
    """Write a PNG (or JPEG/WebP by suffix) atomically."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unsupported picture suffix {path.suffix or '(none)'!r}; use .png, .jpg or .webp",
                         path=path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int) -> None:
    while len(text) > 4 and draw.textlength(text) > width - 8:
        text = text[:-4] + "..."
    draw.text(xy, text, fill=(60, 60, 60))


def contact_sheet(items: Sequence[tuple[str, trimesh.Trimesh | str]], *, tile: int = 256, columns: int | None = None,
                  view: View | None = None, on_tile: Callable[[int], None] | None = None) -> Image.Image:
    """A grid of labelled pictures: ``items`` are (label, mesh or error text); errors get a grey tile."""
    if not items:
        raise InputError("no meshes to put on the sheet")
    cols = columns or int(np.ceil(np.sqrt(len(items))))
    if cols < 1:
        raise InputError(f"columns must be at least 1, got {cols}")
    rows = int(np.ceil(len(items) / cols))
    head = 18
    sheet = Image.new("RGB", (cols * tile, rows * (tile + head)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, item) in enumerate(items):
        x, y = (i % cols) * tile, (i // cols) * (tile + head)
        if isinstance(item, str):
            draw.rectangle((x + 4, y + head + 4, x + tile - 5, y + head + tile - 5), fill=(236, 236, 236))
            _label(draw, (x + 10, y + head + tile // 2 - 6), item, tile - 12)
        else:
            try:
                sheet.paste(render_mesh(item, size=tile, view=view), (x, y + head))
            except ReconError as exc:
                _label(draw, (x + 10, y + head + tile // 2 - 6), exc.message, tile - 12)
        _label(draw, (x + 6, y + 3), label, tile)
        if on_tile is not None:
            on_tile(i)
    return sheet


def preview_path(mesh_path: str | Path, *, avoid: Sequence[str | Path] = ()) -> Path:
    """``<stem>.png`` beside a mesh, or ``<stem>.preview.png`` when that would overwrite a file in ``avoid``."""
    mesh_path = Path(mesh_path)
    path = mesh_path.with_suffix(".png")
    taken = {Path(p).resolve() for p in avoid}
    return path if path.resolve() not in taken else mesh_path.with_name(f"{mesh_path.stem}.preview.png")


@dataclass
class RenderRequest:
    """What ``recon render`` was asked for (see its help)."""

    files: Sequence[Path]
    output: Path | None = None
    out_dir: Path | None = None
    turntable: Path | None = None
    grid: bool = False
    size: int = 512
    azimuth: float | None = None
    elevation: float | None = None
    frames: int = 36
    seconds: float = 4.0
    columns: int | None = None


@dataclass
class RenderReport:
    """Files written and one-line problems (each naming its file)."""

    written: list[Path]
    errors: list[str]


def _view(request: RenderRequest, mesh: trimesh.Trimesh) -> View:
    if request.azimuth is None and request.elevation is None:
        return auto_view(mesh)
    if request.azimuth is None:
        return auto_view(mesh, elevation=float(request.elevation))  # type: ignore[arg-type]
    return View(request.azimuth, AUTO_ELEVATION if request.elevation is None else request.elevation)


def run_render(request: RenderRequest) -> RenderReport:
    """Render what ``request`` asks for; a mesh that cannot be read is reported and the others go on."""
    from recon_cli.io.mesh import load_mesh

    report = RenderReport([], [])
    loaded: list[tuple[Path, trimesh.Trimesh | str]] = []
    for path in request.files:
        try:
            loaded.append((path, framed(load_mesh(path))))
        except ReconError as exc:
            message = str(exc) if exc.path else f"{path}: {exc}"
            report.errors.append(message)
            loaded.append((path, exc.message))
    if request.grid:
        view = None if request.azimuth is None and request.elevation is None else View(
            request.azimuth if request.azimuth is not None else 45.0,
            request.elevation if request.elevation is not None else AUTO_ELEVATION)
        sheet = contact_sheet([(p.name, m) for p, m in loaded], tile=request.size, columns=request.columns,
                              view=view)
        report.written.append(save_picture(sheet, request.output))  # type: ignore[arg-type]
        return report
    for path, mesh in loaded:
        if isinstance(mesh, str):
            continue
        view = _view(request, mesh)
        try:
            if request.output is not None:
                report.written.append(save_picture(render_mesh(mesh, size=request.size, view=view), request.output))
            if request.out_dir is not None:
                report.written.append(save_picture(render_mesh(mesh, size=request.size, view=view),
                                                   Path(request.out_dir) / f"{path.stem}.png"))
            if request.turntable is not None:
                frames = turntable_frames(mesh, frames=request.frames, size=min(request.size, 400),
                                          elevation=view.elevation, start=view.azimuth)
                report.written.append(save_animation(frames, request.turntable, seconds=request.seconds))
        except ReconError as exc:
            report.errors.append(str(exc) if exc.path else f"{path}: {exc}")
        except OSError as exc:
            report.errors.append(f"{path}: cannot write ({exc.strerror or exc})")
    return report


def write_previews(results: Sequence[object]) -> list[str]:
    """Render ``<stem>.png`` beside each mesh of ``recon reconstruct`` results (``FileResult``).

    The picture's path is added to the result's ``files``; it never overwrites the
    result's input photo (``<stem>.preview.png`` then). Returns one-line problems.
    """
    from recon_cli.io.mesh import load_mesh

    problems: list[str] = []
    for result in results:
        output = getattr(result, "output", None)
        if output is None or getattr(result, "error", None) is not None or getattr(result, "skipped", False):
            continue
        try:
            picture = preview_path(output, avoid=[str(getattr(result, "input", ""))])
            getattr(result, "files").append(str(save_picture(render_mesh(load_mesh(output)), picture)))
        except ReconError as exc:
            problems.append(f"{output}: no preview ({exc.message})")
        except OSError as exc:
            problems.append(f"{output}: cannot write the preview ({exc.strerror or exc})")
    return problems
