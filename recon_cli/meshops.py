"""Mesh operations for `recon convert` and `recon info`.

Repair, simplification, up-axis change, scaling to a physical size, and a
report (watertightness, volume, counts, bounds). Pure library code: nothing
here prints; failures raise :class:`~recon_cli.errors.InputError` naming the
file.

Units. Mesh files (OBJ, PLY, STL, OFF) carry no unit; slicers and most CAD
tools read them as millimetres, so a ``--size`` is always written in
millimetres for those formats (``12cm`` gives a longest side of 120). glTF/GLB
is specified in metres, so for GLB the same size is written in metres
(``12cm`` gives 0.12).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from recon_cli.errors import InputError, ReconError
from recon_cli.io.mesh import READABLE_SUFFIXES, format_for, load_mesh, save_mesh

#: length unit -> millimetres.
UNIT_MM: dict[str, float] = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}

#: the unit a format's coordinates are read in by other tools.
FORMAT_UNITS: dict[str, str] = {"glb": "m"}
DEFAULT_UNIT = "mm"

#: output suffix for each exporter name.
FORMAT_SUFFIX: dict[str, str] = {
    "obj": ".obj", "ply": ".ply", "ply_ascii": ".ply", "stl": ".stl", "stl_ascii": ".stl",
    "off": ".off", "glb": ".glb",
}

UP_AXES: tuple[str, ...] = ("y", "z")

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Size:
    """A physical length: ``value`` in ``unit`` (one of :data:`UNIT_MM`)."""

    value: float
    unit: str = "mm"

    @property
    def mm(self) -> float:
        """The length in millimetres."""
        return self.value * UNIT_MM[self.unit]

    def to(self, unit: str) -> float:
        """The length expressed in ``unit``."""
        return self.mm / UNIT_MM[unit]

    def __str__(self) -> str:
        return f"{self.value:g}{self.unit}"


def parse_size(text: str) -> Size:
    """Parse ``"120mm"``, ``"12 cm"``, ``"0.12m"``, ``"4.7in"`` or ``"120"`` (mm)."""
    match = _SIZE_RE.match(text)
    unit = (match.group(2).lower() if match else "") or "mm"
    if unit in ("inch", "inches", '"'):
        unit = "in"
    if match is None or unit not in UNIT_MM:
        raise InputError(f"bad size {text!r}: use a positive number with a unit, e.g. 120mm, 12cm, 0.12m, 4.7in")
    value = float(match.group(1))
    if not value > 0 or not np.isfinite(value):
        raise InputError(f"bad size {text!r}: must be positive")
    return Size(value, unit)


def output_unit(fmt: str) -> str:
    """The unit other tools read format ``fmt`` in (``"m"`` for GLB, ``"mm"`` otherwise)."""
    return FORMAT_UNITS.get(fmt, DEFAULT_UNIT)


# --------------------------------------------------------------------------- report


def _welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Geometry only, coincident vertices merged (STL soups, split UV/normal seams)."""
    return trimesh.Trimesh(vertices=np.asarray(mesh.vertices), faces=np.asarray(mesh.faces), process=True)


def mesh_report(mesh: trimesh.Trimesh, *, unit: str | None = None) -> dict[str, Any]:
    """Counts, bounds and closedness of ``mesh`` as plain JSON values.

    Topology (watertight, winding, volume, bodies) is measured on a copy with
    coincident vertices merged, so a triangle soup (STL) of a closed shape
    counts as watertight. ``volume`` is ``None`` unless the mesh is watertight.
    """
    geo = _welded(mesh)
    empty = len(geo.faces) == 0
    watertight = bool(geo.is_watertight) if not empty else False
    bounds = None if empty else np.asarray(geo.bounds, dtype=float)
    report: dict[str, Any] = {
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(mesh.faces)),
        "unique_vertices": int(len(geo.vertices)),
        "watertight": watertight,
        "winding_consistent": bool(geo.is_winding_consistent) if not empty else False,
        "volume": float(geo.volume) if watertight else None,
        "area": float(geo.area),
        "bodies": int(geo.body_count) if not empty else 0,
        "euler_number": int(geo.euler_number) if not empty else 0,
        "degenerate_faces": int(len(geo.faces) - int(np.count_nonzero(geo.nondegenerate_faces()))),
        "duplicate_faces": int(len(geo.faces) - np.count_nonzero(geo.unique_faces())) if not empty else 0,
        "bounds": None if bounds is None else bounds.round(9).tolist(),
        "extents": None if bounds is None else (bounds[1] - bounds[0]).round(9).tolist(),
    }
    if unit is not None:
        report["unit"] = unit
    return report


def file_report(path: str | Path) -> dict[str, Any]:
    """Load ``path`` and return its :func:`mesh_report` plus the path and format."""
    path = Path(path)
    mesh = load_mesh(path)
    report = {"path": str(path), "format": path.suffix.lower().lstrip(".")}
    report.update(mesh_report(mesh))
    return report


# --------------------------------------------------------------------------- operations


def weld(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Merge exactly coincident vertices that share normals/UVs (lossless); returns a copy."""
    out = mesh.copy()
    out.merge_vertices()
    return out


def repair_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A repaired copy: merged vertices, no degenerate/duplicate faces, consistent
    outward winding and normals, holes of 3-4 edges filled."""
    out = mesh.copy()
    out.merge_vertices(merge_tex=True, merge_norm=True)
    out.update_faces(out.nondegenerate_faces())
    out.update_faces(out.unique_faces())
    out.remove_unreferenced_vertices()
    if len(out.faces) == 0:
        return out
    trimesh.repair.fix_normals(out, multibody=True)
    trimesh.repair.fill_holes(out)
    trimesh.repair.fix_normals(out, multibody=True)
    return out


def simplify_mesh(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """Quadric decimation down to about ``faces`` triangles (no-op when already below)."""
    if faces < 4:
        raise InputError(f"cannot simplify to {faces} faces: need at least 4")
    if len(mesh.faces) <= faces:
        return mesh.copy()
    return mesh.simplify_quadric_decimation(face_count=int(faces))


def y_up_to_z_up(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Rotate +90 degrees about x: +y (up) becomes +z; the front (+x) stays +x."""
    out = mesh.copy()
    out.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1.0, 0.0, 0.0]))
    return out


def scale_to(mesh: trimesh.Trimesh, longest_side: float) -> trimesh.Trimesh:
    """Uniformly scale (about the origin) so the longest bounding-box side is ``longest_side``."""
    extent = float(np.max(mesh.extents)) if len(mesh.vertices) else 0.0
    if not extent > 0:
        raise InputError("cannot scale a mesh with an empty or flat-point bounding box")
    out = mesh.copy()
    out.apply_scale(longest_side / extent)
    return out


# --------------------------------------------------------------------------- convert


@dataclass(frozen=True)
class ConvertOptions:
    """What :func:`convert_mesh` does besides changing the format (applied in this order)."""

    repair: bool = False
    simplify_faces: int | None = None
    up: str = "y"                   # output up axis; inputs are y-up (recon's frame)
    size: Size | None = None        # longest side; written in the output format's unit
    ascii: bool = False             # STL/PLY as text


@dataclass
class ConvertResult:
    """One converted file (or the error that stopped it)."""

    source: Path
    target: Path | None
    ok: bool
    error: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    operations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "input": str(self.source), "output": None if self.target is None else str(self.target),
            "ok": self.ok, "error": self.error, "operations": list(self.operations),
            "before": self.before, "after": self.after,
        }


def resolve_format(path: str | Path, fmt: str | None, *, ascii: bool = False) -> str:
    """The exporter name for ``path`` / ``fmt``, switched to the text variant when ``ascii``."""
    name = format_for(path, fmt)
    if ascii and name in ("stl", "ply"):
        name += "_ascii"
    return name


def transform(mesh: trimesh.Trimesh, options: ConvertOptions, *, unit: str = DEFAULT_UNIT
              ) -> tuple[trimesh.Trimesh, list[str]]:
    """Apply ``options`` to ``mesh``; return the new mesh and the operations done."""
    if options.up not in UP_AXES:
        raise InputError(f"unknown up axis {options.up!r}; valid: {', '.join(UP_AXES)}")
    ops: list[str] = []
    out = weld(mesh)
    if options.repair:
        out = repair_mesh(out)
        ops.append("repair")
    if options.simplify_faces is not None:
        out = simplify_mesh(out, options.simplify_faces)
        ops.append(f"simplify:{options.simplify_faces}")
    if options.up == "z":
        out = y_up_to_z_up(out)
        ops.append("up:z")
    if options.size is not None:
        out = scale_to(out, options.size.to(unit))
        ops.append(f"size:{options.size.to(unit):g}{unit}")
    return out, ops


def convert_mesh(source: str | Path, target: str | Path, *, fmt: str | None = None,
                 options: ConvertOptions = ConvertOptions()) -> ConvertResult:
    """Read ``source``, apply ``options``, write ``target`` atomically; raise InputError on failure."""
    source, target = Path(source), Path(target)
    name = resolve_format(target, fmt, ascii=options.ascii)
    mesh = load_mesh(source)
    unit = output_unit(name)
    before = mesh_report(mesh)
    try:
        out, ops = transform(mesh, options, unit=unit)
    except InputError as exc:
        raise InputError(exc.message, path=source) from exc
    if len(out.faces) == 0:
        raise InputError("no faces left after processing", path=source)
    save_mesh(out, target, fmt=name)
    after = mesh_report(out, unit=unit if options.size is not None else None)
    return ConvertResult(source, target, True, None, before, after, ops)


def list_mesh_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders (not recursive) into their readable mesh files, sorted; keep files as given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in READABLE_SUFFIXES))
        else:
            files.append(p)
    return files


def convert_batch(sources: Sequence[str | Path], out_dir: str | Path, fmt: str, *,
                  options: ConvertOptions = ConvertOptions(),
                  on_result: Callable[[ConvertResult], None] | None = None) -> list[ConvertResult]:
    """Convert every file (folders expanded) into ``out_dir`` as ``<stem><suffix of fmt>``.

    Per-file failures are recorded in the results (never raised) and the batch
    goes on. Two inputs mapping to the same output name: the second one that
    would overwrite the first's output fails instead.
    """
    name = resolve_format(f"x.{fmt}", fmt, ascii=options.ascii)
    out_dir = Path(out_dir)
    results: list[ConvertResult] = []
    taken: set[Path] = set()
    for src in list_mesh_files(sources):
        target = out_dir / (src.stem + FORMAT_SUFFIX[name])
        if target in taken:
            message = f"{src}: output name {target.name} already used by another input"
            result = ConvertResult(src, target, False, message)
        else:
            try:
                result = convert_mesh(src, target, fmt=name, options=options)
                taken.add(target)
            except ReconError as exc:
                result = ConvertResult(src, None, False, str(exc) if exc.path else f"{src}: {exc}")
            except Exception as exc:  # a library failure on one file must not stop the batch
                result = ConvertResult(src, None, False, f"{src}: {type(exc).__name__}: {exc}".splitlines()[0])
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
