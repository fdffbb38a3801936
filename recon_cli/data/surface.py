"""Per-face materials of imported meshes: diffuse colours and UV-mapped textures.

A mesh that carries :class:`SurfaceMaterials` in ``mesh.metadata["surface_materials"]`` is
rendered by :mod:`recon_cli.data.render` with its materials: each ray hit takes the face's diffuse
colour (MTL ``Kd`` / AC3D ``rgb``), multiplied by its texture sampled at the hit's UV coordinates
(barycentric interpolation of the face's corner UVs, wrapped, bilinear). Meshes without it keep the
flat per-face colours (``mesh.visual.face_colors``) of the procedural set.

:func:`assemble` joins parts (vertices, faces, per-corner UVs, a material each) into one trimesh
with process=False, so face order (and the material arrays) stay aligned with the faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

from recon_cli.errors import InputError

METADATA_KEY = "surface_materials"
#: Longest texture side kept (views are 137 px; larger images only cost memory).
MAX_TEXTURE_SIDE = 512


@dataclass
class SurfaceMaterials:
    """Per-face material data aligned with ``mesh.faces``."""

    face_color: np.ndarray                     # (F,3) float32 diffuse colour in [0,1]
    face_texture: np.ndarray                   # (F,) int32 index into ``textures``, -1 = none
    corner_uv: np.ndarray                      # (F,3,2) float32 UV of each face corner
    textures: list[np.ndarray] = field(default_factory=list)   # (H,W,3) uint8 images

    def albedo(self) -> np.ndarray:
        """(F,3) flat colour per face: diffuse times the mean colour of its texture."""
        out = self.face_color.astype(np.float32).copy()
        for k, tex in enumerate(self.textures):
            sel = self.face_texture == k
            if np.any(sel):
                out[sel] *= tex.reshape(-1, 3).mean(axis=0) / 255.0
        return out

    def sample(self, faces: np.ndarray, bary: np.ndarray) -> np.ndarray:
        """Colours (N,3) in [0,1] at barycentric coordinates ``bary`` (N,3) of ``faces`` (N,)."""
        out = self.face_color[faces].astype(np.float32)
        tex_id = self.face_texture[faces]
        for k in np.unique(tex_id[tex_id >= 0]):
            sel = np.flatnonzero(tex_id == k)
            uv = np.einsum("nk,nkj->nj", bary[sel], self.corner_uv[faces[sel]])
            out[sel] *= _bilinear(self.textures[int(k)], uv)
        return out

    def subset(self, face_mask: np.ndarray) -> SurfaceMaterials:
        """The materials of the faces selected by ``face_mask`` (bool (F,) or indices)."""
        return SurfaceMaterials(self.face_color[face_mask], self.face_texture[face_mask],
                                self.corner_uv[face_mask], self.textures)


def _bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup with wrap-around (OpenGL REPEAT); v = 0 is the bottom row. (N,3) in [0,1]."""
    h, w = image.shape[:2]
    x = (uv[:, 0] - np.floor(uv[:, 0])) * w - 0.5
    y = (1.0 - (uv[:, 1] - np.floor(uv[:, 1]))) * h - 0.5
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float32) / 255.0

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return img[yy % h, xx % w]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def load_texture(data: bytes | str, *, max_side: int = MAX_TEXTURE_SIDE, max_pixels: int = 64_000_000) -> np.ndarray:
    """Decode an image (bytes or path) to (H,W,3) uint8, downsized to ``max_side``; raise InputError if bad."""
    import io

    from PIL import Image

    try:
        src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        with Image.open(src) as im:
            if im.size[0] * im.size[1] > max_pixels:
                raise InputError(f"texture too large ({im.size[0]}x{im.size[1]})")
            im.draft("RGB", (max_side, max_side))
            rgb = im.convert("RGB")
            if max(rgb.size) > max_side:
                rgb.thumbnail((max_side, max_side))
            return np.asarray(rgb, dtype=np.uint8)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for broken files
        raise InputError(f"unreadable texture ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") \
            from exc


@dataclass
class Part:
    """One piece of geometry with one material."""

    vertices: np.ndarray           # (V,3)
    faces: np.ndarray              # (F,3) int
    color: tuple[float, float, float] = (0.78, 0.78, 0.78)
    corner_uv: np.ndarray | None = None   # (F,3,2) or None
    texture: int = -1              # index into the textures list passed to ``assemble``


def assemble(parts: list[Part], textures: list[np.ndarray]) -> trimesh.Trimesh:
    """One trimesh (process=False) of all parts with :class:`SurfaceMaterials` in its metadata.

    Degenerate faces (repeated vertex indices) and non-finite vertices are dropped; raises
    InputError when nothing is left.
    """
    verts, faces, colors, tex_ids, uvs = [], [], [], [], []
    offset = 0
    for part in parts:
        v = np.asarray(part.vertices, dtype=np.float64).reshape(-1, 3)
        f = np.asarray(part.faces, dtype=np.int64).reshape(-1, 3)
        if len(f) == 0 or len(v) == 0:
            continue
        keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]) & np.all(f < len(v), axis=1)
        keep &= np.all(f >= 0, axis=1)
        bad_vertex = ~np.all(np.isfinite(v), axis=1)
        if bad_vertex.any():
            keep &= ~np.any(bad_vertex[np.clip(f, 0, len(v) - 1)], axis=1)
        f = f[keep]
        if len(f) == 0:
            continue
        uv = np.zeros((len(f), 3, 2), np.float32) if part.corner_uv is None else \
            np.asarray(part.corner_uv, np.float32).reshape(-1, 3, 2)[keep]
        textured = part.texture >= 0 and part.corner_uv is not None and part.texture < len(textures)
        verts.append(np.where(np.isfinite(v), v, 0.0))
        faces.append(f + offset)
        offset += len(v)
        colors.append(np.tile(np.clip(np.asarray(part.color, np.float32), 0, 1), (len(f), 1)))
        tex_ids.append(np.full(len(f), part.texture if textured else -1, np.int32))
        uvs.append(uv)
    if not faces:
        raise InputError("model has no faces")
    mesh = trimesh.Trimesh(np.concatenate(verts), np.concatenate(faces), process=False)
    mats = SurfaceMaterials(np.concatenate(colors), np.concatenate(tex_ids), np.concatenate(uvs), list(textures))
    mesh.metadata[METADATA_KEY] = mats
    rgba = np.concatenate([np.round(mats.albedo() * 255), np.full((len(mesh.faces), 1), 255.0)], axis=1)
    mesh.visual.face_colors = rgba.astype(np.uint8)
    return mesh


def materials_of(mesh: trimesh.Trimesh) -> SurfaceMaterials | None:
    """The mesh's :class:`SurfaceMaterials` when present and aligned with its faces."""
    mats = getattr(mesh, "metadata", {}).get(METADATA_KEY)
    if isinstance(mats, SurfaceMaterials) and len(mats.face_color) == len(mesh.faces):
        return mats
    return None


def barycentric_hits(triangles: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """(N,3) barycentric coordinates of the hits of rays (origins, dirs) on ``triangles`` (N,3,3).

    Moeller-Trumbore without the range checks (the faces are known to be hit); clipped to [0,1].
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    e1, e2 = b - a, c - a
    p = np.cross(dirs, e2)
    det = np.einsum("ij,ij->i", e1, p)
    det = np.where(np.abs(det) < 1e-20, 1e-20, det)
    s = origins - a
    u = np.einsum("ij,ij->i", s, p) / det
    q = np.cross(s, e1)
    v = np.einsum("ij,ij->i", dirs, q) / det
    bary = np.stack([1.0 - u - v, u, v], axis=1)
    bary = np.clip(bary, 0.0, 1.0)
    return bary / np.maximum(bary.sum(axis=1, keepdims=True), 1e-12)
