"""Mesh reading and writing.

Exporters are pure functions ``mesh -> bytes`` registered by format name;
:func:`save_mesh` is the only function that writes a mesh file, and it does
so atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from recon_cli.errors import InputError
from recon_cli.io.atomic import atomic_write_bytes

if TYPE_CHECKING:  # trimesh (about 0.4 s to import) loads only when a mesh is read or written
    import trimesh

Exporter = Callable[["trimesh.Trimesh"], bytes]


def _export(file_type: str, **kwargs: object) -> Exporter:
    def exporter(mesh: trimesh.Trimesh) -> bytes:
        data = mesh.export(file_type=file_type, **kwargs)
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    return exporter


_obj_trimesh = _export("obj", include_texture=False, include_color=True)


def _obj(mesh: trimesh.Trimesh) -> bytes:
    """Wavefront OBJ: ``v`` and ``f`` lines (8 decimals, as trimesh writes them) in one formatting pass.

    About 4x faster than trimesh's writer (0.035 vs 0.13 s for 79k faces); a mesh with
    vertex or face colours goes through trimesh, which writes them.
    """
    import numpy as np

    if mesh.visual.kind is not None:
        return _obj_trimesh(mesh)
    v = np.asarray(mesh.vertices, dtype=np.float64).ravel().tolist()
    f = (np.asarray(mesh.faces, dtype=np.int64) + 1).ravel().tolist()
    text = "".join(["# written by recon\n", "v %.8f %.8f %.8f\n" * (len(v) // 3) % tuple(v),
                    "f %d %d %d\n" * (len(f) // 3) % tuple(f)])
    return text.encode("ascii")


#: format name -> exporter. ``stl`` is binary, ``stl_ascii`` is text.
EXPORTERS: dict[str, Exporter] = {
    "obj": _obj,
    "ply": _export("ply", encoding="binary"),
    "ply_ascii": _export("ply", encoding="ascii"),
    "stl": _export("stl"),
    "stl_ascii": _export("stl_ascii"),
    "off": _export("off"),
    "glb": _export("glb"),
}

#: file suffix -> format name.
SUFFIX_FORMATS: dict[str, str] = {".obj": "obj", ".ply": "ply", ".stl": "stl", ".off": "off", ".glb": "glb"}

READABLE_SUFFIXES: tuple[str, ...] = (".obj", ".off", ".ply", ".stl", ".glb", ".gltf")


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """Return the exporter name for ``path`` (or the explicit ``fmt``)."""
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        if key not in EXPORTERS:
            raise InputError(f"unknown mesh format {fmt!r}; valid: {', '.join(EXPORTERS)}", path=path)
        return key
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        valid = ", ".join(SUFFIX_FORMATS)
        raise InputError(f"cannot tell the mesh format from suffix {suffix or '(none)'!r}; use one of {valid}", path=path)
    return SUFFIX_FORMATS[suffix]


def mesh_bytes(mesh: trimesh.Trimesh, fmt: str) -> bytes:
    """Serialise ``mesh`` in format ``fmt`` (a key of :data:`EXPORTERS`)."""
    return EXPORTERS[fmt](mesh)


def save_mesh(mesh: trimesh.Trimesh, path: str | Path, *, fmt: str | None = None) -> Path:
    """Write ``mesh`` to ``path`` atomically; the format comes from the suffix or ``fmt``.

    A mesh with non-finite vertices is refused (InputError); nothing is written.
    """
    path = Path(path)
    kind = format_for(path, fmt)
    import numpy as np

    if not np.all(np.isfinite(np.asarray(mesh.vertices))):
        raise InputError("mesh has NaN or infinite vertex coordinates; not written", path=path)
    data = mesh_bytes(mesh, kind)
    atomic_write_bytes(path, data)
    return path


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a mesh file (scenes are concatenated); raise InputError naming the file."""
    import numpy as np
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputError("no such mesh file", path=path)
    suffix = path.suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        raise InputError(f"unsupported mesh suffix {suffix!r}; readable: {', '.join(READABLE_SUFFIXES)}", path=path)
    if suffix == ".stl":
        _check_stl(path)
    try:
        loaded = trimesh.load(str(path), force="mesh", process=False)
    except IndexError as exc:  # faces naming vertices the file does not have
        raise InputError(f"malformed mesh: a face refers to a vertex the file does not have ({exc})".splitlines()[0],
                         path=path) from exc
    except Exception as exc:  # trimesh raises many types for bad files
        raise InputError(f"cannot read mesh ({type(exc).__name__}: {exc})".splitlines()[0], path=path) from exc
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError("file holds no triangles", path=path)
    if not np.all(np.isfinite(loaded.vertices)):
        raise InputError("mesh has non-finite vertex coordinates", path=path)
    return loaded


def _check_stl(path: Path) -> None:
    """InputError unless ``path`` looks like an ASCII STL ('solid' text) or a binary STL whose size
    matches its triangle count (trimesh otherwise guesses an encoding and fails obscurely)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(84)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", path=path) from None
    if len(head) == 84 and size == 84 + 50 * int.from_bytes(head[80:84], "little"):
        return  # binary STL (its header may well start with 'solid' too)
    if head.lstrip()[:5].lower() == b"solid":
        try:
            head.decode("ascii")
            return
        except UnicodeDecodeError:
            pass
    raise InputError("not an STL file: neither ASCII ('solid ...') nor a binary STL of the size its header "
                     "states (truncated or not a mesh?)", path=path)
