"""Sweet Home 3D furniture catalogues (.sh3f, and the default catalogue inside sweethome3d.jar).

A catalogue is a zip archive with ``PluginFurnitureCatalog.properties`` (the jar:
``com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties``), a Java properties file with
``id#N``, ``name#N``, ``tags#N``, ``category#N`` (a room), ``model#N`` (an OBJ inside the archive),
``modelRotation#N`` (3x3, row-major), ``width#N``/``depth#N``/``height#N`` (cm) and ``creator#N``.

Sweet Home 3D turns a model by ``modelRotation`` (v' = R v), then stretches its bounding box to
width (x) x height (y) x depth (z); the result is y-up with the front facing +z (towards the
viewer of the plan). :func:`load_model` does the same and then turns it into recon's frame
(+y up, front +x).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import trimesh

from recon_cli.data.frame import frame_rotation
from recon_cli.data.importers.archive import extract_zip_files, open_zip, read_zip_member, safe_relpath
from recon_cli.data.surface import MAX_TEXTURE_SIDE, Part, assemble
from recon_cli.errors import InputError

#: The frame of a Sweet Home 3D model after its modelRotation: +y up, front +z.
SH3D_FRAME = ("+y", "+z")
PLUGIN_PROPERTIES = "PluginFurnitureCatalog.properties"
DEFAULT_PROPERTIES = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties: key=value / key: value, comments, continuation lines, \\uXXXX escapes."""
    out: dict[str, str] = {}
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.lstrip() if not buf else raw.lstrip()
        if not buf and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            buf += line[:-1]
            continue
        logical.append(buf + line)
        buf = ""
    if buf:
        logical.append(buf)
    for line in logical:
        m = re.match(r"((?:\\.|[^=:\s\\])*)\s*[=:\s]\s*(.*)$", line)
        if not m:
            out[_unescape(line.strip())] = ""
            continue
        out[_unescape(m.group(1))] = _unescape(m.group(2))
    return out


def _unescape(text: str) -> str:
    def repl(m: re.Match) -> str:
        esc = m.group(1)
        if esc.startswith("u"):
            try:
                return chr(int(esc[1:], 16))
            except ValueError:
                return esc
        return {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(esc, esc)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", repl, text)


@dataclass(frozen=True)
class CatalogEntry:
    """One piece of furniture of a catalogue."""

    catalog_id: str        # the properties' id#N (e.g. "Blend Swap CC-0#armchair"), the mapping key
    index: int
    name: str
    tags: str
    room: str              # category#N: a room, not an object type
    model: str             # member name of the OBJ inside the archive
    rotation: tuple[float, ...] | None   # modelRotation#N, 9 numbers row-major
    size: tuple[float, float, float] | None   # width, height, depth (cm)
    creator: str
    door_or_window: bool


def read_catalog(path: str | Path) -> tuple[dict[str, str], list[CatalogEntry]]:
    """(catalogue header fields, entries) of a .sh3f or sweethome3d.jar; InputError when unreadable."""
    path = Path(path)
    with open_zip(path) as zf:
        names = set(zf.namelist())
        member = PLUGIN_PROPERTIES if PLUGIN_PROPERTIES in names else (
            DEFAULT_PROPERTIES if DEFAULT_PROPERTIES in names else None)
        if member is None:
            raise InputError("not a Sweet Home 3D furniture catalogue (no furniture catalogue properties)", path=path)
        props = parse_properties(read_zip_member(zf, member, max_bytes=16 << 20).decode("latin-1"))
    entries = []
    indices = sorted({int(k.split("#", 1)[1]) for k in props if k.startswith("name#") and k.split("#", 1)[1].isdigit()})
    for i in indices:
        model = props.get(f"model#{i}", "").strip()
        if not model:
            continue
        rot = None
        if props.get(f"modelRotation#{i}"):
            try:
                values = tuple(float(v) for v in props[f"modelRotation#{i}"].split())
                rot = values if len(values) == 9 else None
            except ValueError:
                rot = None
        try:
            size = (float(props[f"width#{i}"]), float(props[f"height#{i}"]), float(props[f"depth#{i}"]))
        except (KeyError, ValueError):
            size = None
        entries.append(CatalogEntry(
            catalog_id=props.get(f"id#{i}", f"{path.stem}#{i}"), index=i, name=props.get(f"name#{i}", ""),
            tags=props.get(f"tags#{i}", ""), room=props.get(f"category#{i}", ""), model=model.lstrip("/"),
            rotation=rot, size=size, creator=props.get(f"creator#{i}", ""),
            door_or_window=props.get(f"doorOrWindow#{i}", "false").strip().lower() == "true"))
    header = {k: v for k, v in props.items() if "#" not in k}
    return header, entries


def _referenced(text: str, keyword: str) -> list[str]:
    """File names after ``keyword`` (mtllib / map_Kd) in OBJ/MTL text (options before the name skipped)."""
    out = []
    for line in text.splitlines():
        tokens = line.strip().split()
        if tokens and tokens[0] == keyword and len(tokens) > 1:
            out.append(tokens[-1] if keyword.startswith("map_") else " ".join(tokens[1:]))
    return out


def _resolve(base_dir: PurePosixPath, ref: str) -> str | None:
    rel = safe_relpath(str(base_dir / ref.replace("\\", "/")))
    return None if rel is None else str(rel)


def load_model(archive: str, model: str, rotation: tuple[float, ...] | None = None,
               size: tuple[float, float, float] | None = None, label: str = "") -> trimesh.Trimesh:
    """The OBJ ``model`` of a catalogue in recon's frame, with its materials and textures.

    Warnings (missing material library or texture) go to ``mesh.metadata["warnings"]``.
    """
    label = label or model
    warnings: list[str] = []
    with open_zip(archive) as zf:
        names = set(zf.namelist())
        if model not in names:
            raise InputError(f"{label}: model file {model} is not in the catalogue", path=archive)
        obj_text = read_zip_member(zf, model).decode("latin-1")
        base = PurePosixPath(model).parent
        wanted = [model]
        for lib in _referenced(obj_text, "mtllib"):
            member = _resolve(base, lib)
            if member is None or member not in names:
                warnings.append(f"{label}: missing material library {lib!r} (drawn grey)")
                continue
            wanted.append(member)
            mtl_text = read_zip_member(zf, member).decode("latin-1")
            for tex in dict.fromkeys(_referenced(mtl_text, "map_Kd")):
                tex_member = _resolve(PurePosixPath(member).parent, tex)
                if tex_member is None or tex_member not in names:
                    warnings.append(f"{label}: missing texture {tex!r} (drawn with its material colour)")
                else:
                    wanted.append(tex_member)
        with tempfile.TemporaryDirectory(prefix="recon-sh3d-") as tmp:
            extract_zip_files(zf, list(dict.fromkeys(wanted)), Path(tmp))
            try:
                scene = trimesh.load(Path(tmp) / model, force="scene", process=False)
            except Exception as exc:  # noqa: BLE001 - trimesh raises many kinds on broken OBJ
                raise InputError(f"{label}: unreadable OBJ ({type(exc).__name__}: {exc})".splitlines()[0],
                                 path=archive) from exc
            mesh = scene_to_mesh(scene)
    if rotation is not None:
        mesh.apply_transform(_affine(np.asarray(rotation, float).reshape(3, 3)))
    if size is not None:
        ext = mesh.extents
        if np.all(np.asarray(size) > 0) and np.all(ext > 1e-9):
            mesh.apply_transform(_affine(np.diag(np.asarray(size) / ext)))
    mesh.apply_transform(_affine(frame_rotation(*SH3D_FRAME)))
    mesh.metadata["warnings"] = warnings
    return mesh


def _affine(M: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = M
    return T


def scene_to_mesh(scene: trimesh.Scene) -> trimesh.Trimesh:
    """Join a loaded scene into one mesh with SurfaceMaterials (Kd colours, map_Kd textures, UVs)."""
    parts: list[Part] = []
    textures: list[np.ndarray] = []
    tex_ids: dict[int, int] = {}
    for node in scene.graph.nodes_geometry:
        transform, gname = scene.graph[node]
        geom = scene.geometry.get(gname)
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        verts = trimesh.transform_points(np.asarray(geom.vertices, float), transform)
        faces = np.asarray(geom.faces, np.int64)
        color, uv, tex = (0.78, 0.78, 0.78), None, -1
        visual = geom.visual
        if getattr(visual, "kind", None) == "texture" or isinstance(visual, trimesh.visual.TextureVisuals):
            mat = getattr(visual, "material", None)
            color = _material_colour(mat)
            image = getattr(mat, "image", None) or getattr(mat, "baseColorTexture", None)
            vuv = getattr(visual, "uv", None)
            if image is not None and vuv is not None and len(vuv) == len(verts):
                key = id(image)
                if key not in tex_ids:
                    textures.append(_image_array(image))
                    tex_ids[key] = len(textures) - 1
                tex = tex_ids[key]
                uv = np.asarray(vuv, np.float32)[faces]
        elif getattr(visual, "kind", None) in ("face", "vertex"):
            color = tuple(np.asarray(visual.face_colors, float)[:, :3].mean(0) / 255.0)
        parts.append(Part(verts, faces, color, uv, tex))
    return assemble(parts, textures)


def _material_colour(mat) -> tuple[float, float, float]:  # noqa: ANN001 - trimesh material
    for attr in ("diffuse", "baseColorFactor", "main_color"):
        value = getattr(mat, attr, None)
        if value is not None:
            raw = np.asarray(value).ravel()[:3]
            if len(raw) == 3:
                arr = raw.astype(float) / (255.0 if raw.dtype.kind in "ui" else 1.0)
                return tuple(np.clip(arr, 0.0, 1.0))
    return (0.78, 0.78, 0.78)


def _image_array(image) -> np.ndarray:  # noqa: ANN001 - PIL image
    rgb = image.convert("RGB")
    if max(rgb.size) > MAX_TEXTURE_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((MAX_TEXTURE_SIDE, MAX_TEXTURE_SIDE))
    return np.asarray(rgb, dtype=np.uint8)
