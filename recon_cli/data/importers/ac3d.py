"""A small reader of AC3D ``.ac`` files (and TORCS ``.acc``, the same format with extras).

trimesh does not read AC3D, and the libraries that do (assimp through pyassimp) need a system
library that pip cannot install, so this module reads the documented text format:

```
AC3Db
MATERIAL "name" rgb r g b  amb r g b  emis r g b  spec r g b  shi n  trans t
OBJECT world|group|poly|light
name "..."          data N + N characters     texture "file" [kind]
texrep u v          texoff u v                rot 9 numbers      loc x y z
crease angle        url "..."                 subdiv n           hidden / locked / folded
numvert N           N lines "x y z" (TORCS .acc: "x y z nx ny nz")
numsurf N           each: SURF flags / mat i / refs n + n lines "vertex u v [u2 v2 ...]"
kids N              N child OBJECTs follow
```

Vertices of an object are in its parent's frame moved by ``rot`` (as OpenSceneGraph reads it,
row vectors: v @ rot) and ``loc``. Polygons (SURF type 0) are triangulated as fans, TORCS
triangle strips (type 4) as strips; lines (types 1, 2) carry no area and are skipped. A texture is looked up next to the file (case-
insensitively, also with a ``.png``/``.rgb`` twin); the first texture of an object is its colour
texture (TORCS' extra ``tiled``/``skids``/``shad`` layers are ignored). Colour = material ``rgb``
times the texture. Unknown tags, a missing texture and bad surfaces give warnings (returned, not
printed); a file that is not AC3D raises :class:`InputError`. Coordinates are returned as written
(AC3D is y-up); the importers apply each source's axis convention.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from recon_cli.data.surface import Part, assemble, load_texture
from recon_cli.errors import InputError

MAX_FILE_BYTES = 200 * 1024 * 1024
_KNOWN_IGNORED = {"crease", "url", "subdiv", "hidden", "locked", "folded", "shader"}


@dataclass
class _Material:
    rgb: tuple[float, float, float] = (0.8, 0.8, 0.8)
    trans: float = 0.0


@dataclass
class AC3DModel:
    """Parsed file: parts in world coordinates plus texture file names and warnings."""

    parts: list[Part] = field(default_factory=list)
    texture_names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Lines:
    def __init__(self, text: str, name: str) -> None:
        self.lines = text.splitlines()
        self.i = 0
        self.name = name

    def next(self) -> str | None:
        while self.i < len(self.lines):
            line = self.lines[self.i].strip()
            self.i += 1
            if line:
                return line
        return None

    def raw(self) -> str:
        if self.i >= len(self.lines):
            raise InputError(f"unexpected end of file at line {self.i}", path=self.name)
        line = self.lines[self.i]
        self.i += 1
        return line

    def error(self, message: str) -> InputError:
        return InputError(f"line {self.i}: {message}", path=self.name)


def _floats(tokens: list[str], n: int, lines: _Lines) -> list[float]:
    try:
        values = [float(t) for t in tokens[:n]]
    except ValueError:
        raise lines.error(f"expected {n} numbers, got {' '.join(tokens[:n])!r}") from None
    if len(values) < n:
        raise lines.error(f"expected {n} numbers, got {len(values)}")
    return values


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line, posix=True)
    except ValueError:
        return line.split()


def _material(tokens: list[str], lines: _Lines) -> _Material:
    mat = _Material()
    for k, tok in enumerate(tokens):
        if tok == "rgb" and k + 3 < len(tokens):
            mat.rgb = tuple(_floats(tokens[k + 1:k + 4], 3, lines))  # type: ignore[assignment]
        elif tok == "trans" and k + 1 < len(tokens):
            mat.trans = _floats(tokens[k + 1:k + 2], 1, lines)[0]
    return mat


def parse_ac3d(text: str, name: str = "<ac3d>") -> tuple[list[_Material], list[dict], list[str]]:
    """(materials, objects, unknown tags): objects have world vertices, surfaces, texture, texrep/texoff."""
    lines = _Lines(text, name)
    header = lines.next()
    if header is None or not header.startswith("AC3D"):
        raise InputError("not an AC3D file (no AC3D header)", path=name)
    materials: list[_Material] = []
    objects: list[dict] = []
    warnings: set[str] = set()

    def read_object(first: str, parent_rot: np.ndarray, parent_loc: np.ndarray) -> None:
        obj = {"kind": first.split()[1] if len(first.split()) > 1 else "poly", "vertices": np.zeros((0, 3)),
               "surfaces": [], "texture": None, "texrep": (1.0, 1.0), "texoff": (0.0, 0.0), "name": ""}
        rot, loc = np.eye(3), np.zeros(3)
        while True:
            line = lines.next()
            if line is None:
                raise lines.error("unexpected end of file inside an OBJECT")
            tokens = _split(line)
            tag = tokens[0].lower() if tokens else ""
            if tag == "name":
                obj["name"] = " ".join(tokens[1:])
            elif tag == "data":
                n = int(_floats(tokens[1:2], 1, lines)[0])
                consumed = 0
                while consumed < n:  # the data block may span several lines
                    consumed += len(lines.raw()) + 1
            elif tag == "texture":
                if obj["texture"] is None and len(tokens) > 1:
                    obj["texture"] = tokens[1]
            elif tag == "texrep":
                obj["texrep"] = tuple(_floats(tokens[1:3], 2, lines))
            elif tag == "texoff":
                obj["texoff"] = tuple(_floats(tokens[1:3], 2, lines))
            elif tag == "rot":
                rot = np.array(_floats(tokens[1:10], 9, lines)).reshape(3, 3)
            elif tag == "loc":
                loc = np.array(_floats(tokens[1:4], 3, lines))
            elif tag == "numvert":
                n = int(_floats(tokens[1:2], 1, lines)[0])
                verts = np.empty((n, 3))
                for k in range(n):
                    verts[k] = _floats((lines.next() or "").split(), 3, lines)
                obj["vertices"] = verts
            elif tag == "numsurf":
                n = int(_floats(tokens[1:2], 1, lines)[0])
                for _ in range(n):
                    obj["surfaces"].append(read_surface())
            elif tag == "kids":
                n = int(_floats(tokens[1:2], 1, lines)[0])
                world_rot = rot @ parent_rot
                world_loc = loc @ parent_rot + parent_loc
                obj["vertices"] = obj["vertices"] @ world_rot + world_loc
                objects.append(obj)
                for _ in range(n):
                    child = lines.next()
                    if child is None:
                        warnings.add("(fewer kids than declared)")
                        return
                    if not child.startswith("OBJECT"):
                        raise lines.error("expected a child OBJECT")
                    read_object(child, world_rot, world_loc)
                return
            elif tag in _KNOWN_IGNORED:
                pass
            else:
                warnings.add(tokens[0] if tokens else "?")

    def read_surface() -> dict:
        line = lines.next()
        tokens = _split(line or "")
        if not tokens or tokens[0] != "SURF":
            raise lines.error("expected SURF")
        try:
            flags = int(tokens[1], 0)
        except (IndexError, ValueError):
            raise lines.error(f"bad SURF flags {' '.join(tokens[1:])!r}") from None
        surf = {"type": flags & 0x0F, "mat": 0, "refs": [], "uv": []}
        while True:
            line = lines.next()
            tokens = _split(line or "")
            if not tokens:
                raise lines.error("unexpected end of file in a SURF")
            if tokens[0] == "mat":
                surf["mat"] = int(_floats(tokens[1:2], 1, lines)[0])
            elif tokens[0] == "refs":
                n = int(_floats(tokens[1:2], 1, lines)[0])
                for _ in range(n):
                    parts = (lines.next() or "").split()
                    if not parts:
                        raise lines.error("file ends inside a refs block")
                    surf["refs"].append(int(float(parts[0])))
                    uv = _floats(parts[1:3], 2, lines) if len(parts) >= 3 else [0.0, 0.0]
                    surf["uv"].append(uv)
                return surf
            else:
                warnings.add(tokens[0])

    while True:
        line = lines.next()
        if line is None:
            break
        tokens = _split(line)
        if tokens[0] == "MATERIAL":
            materials.append(_material(tokens, lines))
        elif tokens[0] == "OBJECT":
            read_object(line, np.eye(3), np.zeros(3))
        else:
            warnings.add(tokens[0])
    return materials, objects, sorted(warnings)


def _find_texture(folders: list[Path], name: str) -> Path | None:
    """The texture file ``name`` in the first of ``folders`` that has it (case-insensitive; twins).

    Only the base name is used, so a texture path can never lead out of the given folders.
    """
    base = Path(name.replace("\\", "/")).name
    if not base or base in (".", ".."):
        return None
    stem = Path(base).stem.lower()
    for folder in folders:
        try:
            entries = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
        except OSError:
            continue
        for cand in (base.lower(), stem + ".png", stem + ".rgb", stem + ".jpg"):
            if cand in entries:
                return entries[cand]
    return None


#: Objects that are effects, not the object's shape (FlightGear wakes, propeller blur discs, shadows).
EFFECT_OBJECTS = r"wake|prop_?disc|prop_?blur|shadow|ground|spray|bow_?wave|flare|halo"


def read_ac3d(path: str | Path, *, textures: bool = True, texture_dirs: list[Path] | None = None,
              skip_objects: str | None = EFFECT_OBJECTS) -> tuple[trimesh.Trimesh, list[str]]:
    """(mesh with SurfaceMaterials, warnings) of an AC3D file; raise InputError when unreadable.

    Textures are looked up next to the file, then in ``texture_dirs`` (in order). Objects whose
    name matches ``skip_objects`` (a case-insensitive regex searched in the name) are left out.
    """
    import re

    skip_re = re.compile(skip_objects, re.IGNORECASE) if skip_objects else None
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"file larger than {MAX_FILE_BYTES >> 20} MB", path=path)
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path=path) from exc
    materials, objects, unknown = parse_ac3d(text, str(path))
    warnings = [f"{path.name}: file ends before all declared kids" if tag.startswith("(") else
                f"{path.name}: unknown AC3D tag {tag!r} ignored" for tag in unknown]
    tex_index: dict[str, int] = {}
    images: list[np.ndarray] = []
    parts: list[Part] = []
    missing: set[str] = set()
    for obj in objects:
        if skip_re is not None and skip_re.search(obj["name"] or ""):
            continue
        verts = obj["vertices"]
        tex = -1
        if textures and obj["texture"]:
            key = obj["texture"]
            if key not in tex_index:
                found = _find_texture([path.parent, *(texture_dirs or [])], key)
                if found is None:
                    missing.add(key)
                    tex_index[key] = -1
                else:
                    try:
                        images.append(load_texture(str(found)))
                        tex_index[key] = len(images) - 1
                    except InputError as exc:
                        warnings.append(f"{path.name}: texture {key!r}: {exc.message}")
                        tex_index[key] = -1
            tex = tex_index[key]
        rep, off = np.array(obj["texrep"]), np.array(obj["texoff"])
        by_mat: dict[int, tuple[list, list]] = {}
        for surf in obj["surfaces"]:
            refs = surf["refs"]
            if surf["type"] not in (0, 4) or len(refs) < 3:
                continue
            if min(refs) < 0 or max(refs) >= len(verts):
                warnings.append(f"{path.name}: surface refers to a missing vertex; skipped")
                continue
            tris, uvs = by_mat.setdefault(surf["mat"], ([], []))
            uv = np.asarray(surf["uv"], dtype=np.float64) * rep + off
            if surf["type"] == 4:  # TORCS .acc triangle strip
                for k in range(len(refs) - 2):
                    a, b = (k, k + 1) if k % 2 == 0 else (k + 1, k)
                    tris.append((refs[a], refs[b], refs[k + 2]))
                    uvs.append((uv[a], uv[b], uv[k + 2]))
            else:
                for k in range(1, len(refs) - 1):
                    tris.append((refs[0], refs[k], refs[k + 1]))
                    uvs.append((uv[0], uv[k], uv[k + 1]))
        for mat_id, (tris, uvs) in by_mat.items():
            mat = materials[mat_id] if 0 <= mat_id < len(materials) else _Material()
            parts.append(Part(verts, np.asarray(tris, np.int64), mat.rgb, np.asarray(uvs, np.float32), tex))
    for key in sorted(missing):
        warnings.append(f"{path.name}: missing texture {key!r} (drawn with its material colour)")
    mesh = assemble(parts, images)
    return mesh, list(dict.fromkeys(warnings))
