"""Solid primitives and the part assembler used by the procedural categories.

Frame: +y up, the object's front towards +z, x to the object's left/right.
Every primitive returns a ``manifold3d.Manifold`` (always a closed solid);
:class:`Assembly` unions coloured parts into one watertight ``trimesh.Trimesh``
and keeps the colour of each part on its faces (through manifold's
per-part original ids, which survive the boolean union).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh
from manifold3d import CrossSection, FillRule, Manifold, OpType

Vec = Sequence[float]
Colour = tuple[int, int, int]

#: Default number of segments around a cylinder (smooth enough at 137 px).
SEG = 16


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One float drawn uniformly from [lo, hi) (the proportion parameters of every generator)."""
    return float(rng.uniform(lo, hi))


def box(center: Vec, size: Vec) -> Manifold:
    """Axis-aligned box of ``size`` (x, y, z) centred on ``center``."""
    sx, sy, sz = (max(float(s), 1e-4) for s in size)
    return Manifold.cube((sx, sy, sz), True).translate(tuple(float(c) for c in center))


def box_between(lo: Vec, hi: Vec) -> Manifold:
    """Axis-aligned box from corner ``lo`` to corner ``hi``."""
    lo_a, hi_a = np.minimum(lo, hi), np.maximum(lo, hi)
    return box((lo_a + hi_a) / 2, hi_a - lo_a)


def _frame_from_z(direction: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking +z onto the unit vector ``direction``."""
    d = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(helper, d)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return np.stack([u, v, d], axis=1)


def place(m: Manifold, rotation: np.ndarray, origin: Vec) -> Manifold:
    """Apply ``x -> rotation @ x + origin``."""
    mat = np.concatenate([rotation, np.asarray(origin, float).reshape(3, 1)], axis=1)
    return m.transform(mat)


def cyl(p0: Vec, p1: Vec, r0: float, r1: float | None = None, seg: int = SEG) -> Manifold:
    """Cylinder (or cone frustum when ``r1`` differs) from point ``p0`` to ``p1``."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.linalg.norm(b - a))
    r1 = r0 if r1 is None else r1
    m = Manifold.cylinder(max(length, 1e-4), float(r0), float(r1), seg)
    return place(m, _frame_from_z(b - a), a)


def ycyl(center: Vec, radius: float, height: float, r_top: float | None = None, seg: int = SEG) -> Manifold:
    """Vertical cylinder of ``height`` whose bottom centre is ``center``."""
    c = np.asarray(center, float)
    return cyl(c, c + [0.0, height, 0.0], radius, r_top, seg)


def sphere(center: Vec, radius: float, seg: int = SEG) -> Manifold:
    """Sphere."""
    return Manifold.sphere(float(radius), seg).translate(tuple(float(c) for c in center))


def ellipsoid(center: Vec, radii: Vec, seg: int = SEG) -> Manifold:
    """Axis-aligned ellipsoid."""
    return Manifold.sphere(1.0, seg).scale(tuple(float(r) for r in radii)).translate(
        tuple(float(c) for c in center))


def _section(poly: np.ndarray) -> CrossSection:
    return CrossSection([np.asarray(poly, float)], FillRule.NonZero)


def extrude_side(poly_zy: np.ndarray, x0: float, x1: float) -> Manifold:
    """Extrude a side-profile polygon given as (z, y) pairs along x from ``x0`` to ``x1``."""
    m = Manifold.extrude(_section(poly_zy), float(x1 - x0))
    mat = np.array([[0, 0, 1, x0], [0, 1, 0, 0], [1, 0, 0, 0]], float)
    return m.transform(mat)


def extrude_plan(poly_xz: np.ndarray, y0: float, y1: float) -> Manifold:
    """Extrude a plan-view polygon given as (x, z) pairs along y from ``y0`` to ``y1``."""
    m = Manifold.extrude(_section(poly_xz), float(y1 - y0))
    mat = np.array([[1, 0, 0, 0], [0, 0, 1, y0], [0, 1, 0, 0]], float)
    return m.transform(mat)


def extrude_front(poly_xy: np.ndarray, z0: float, z1: float) -> Manifold:
    """Extrude a front-view polygon given as (x, y) pairs along z from ``z0`` to ``z1``."""
    return Manifold.extrude(_section(poly_xy), float(z1 - z0)).translate((0.0, 0.0, float(z0)))


def revolve_y(profile_ry: np.ndarray, center: Vec = (0.0, 0.0, 0.0), seg: int = 24) -> Manifold:
    """Solid of revolution about the vertical axis through ``center``; profile is (radius, y) pairs."""
    m = Manifold.revolve(_section(profile_ry), seg)  # axis z, height along z
    rot = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)  # z -> y
    return place(m, rot, center)


def revolve_z(profile_rz: np.ndarray, center: Vec = (0.0, 0.0, 0.0), seg: int = 24) -> Manifold:
    """Solid of revolution about the z axis (front-back) through ``center``; profile (radius, z)."""
    return Manifold.revolve(_section(profile_rz), seg).translate(tuple(float(c) for c in center))


def revolve_x(profile_rx: np.ndarray, center: Vec = (0.0, 0.0, 0.0), seg: int = 24) -> Manifold:
    """Solid of revolution about the x axis (left-right); profile (radius, x)."""
    m = Manifold.revolve(_section(profile_rx), seg)
    rot = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)  # z -> x
    return place(m, rot, center)


def hull_pts(points: np.ndarray) -> Manifold:
    """Convex hull of (N, 3) points."""
    return Manifold.hull_points(np.asarray(points, float))


def hull(*parts: Manifold) -> Manifold:
    """Convex hull of several solids."""
    return Manifold.batch_hull(list(parts))


def rounded_rect(w: float, h: float, r: float, seg: int = 6) -> np.ndarray:
    """(K, 2) polygon of a rectangle ``w`` x ``h`` centred at 0 with corner radius ``r``."""
    r = float(min(r, w / 2 - 1e-4, h / 2 - 1e-4))
    if r <= 1e-4:
        return np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    pts = []
    for cx, cy, a0 in ((w / 2 - r, h / 2 - r, 0.0), (-w / 2 + r, h / 2 - r, 90.0),
                       (-w / 2 + r, -h / 2 + r, 180.0), (w / 2 - r, -h / 2 + r, 270.0)):
        for a in np.radians(np.linspace(a0, a0 + 90.0, seg)):
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return np.array(pts)


def rbox(center: Vec, size: Vec, radius: float, *, axis: str = "y", seg: int = 5) -> Manifold:
    """Box with edges parallel to ``axis`` rounded by ``radius``."""
    sx, sy, sz = (float(s) for s in size)
    cx, cy, cz = (float(c) for c in center)
    if axis == "y":
        return extrude_plan(rounded_rect(sx, sz, radius, seg) + [cx, cz], cy - sy / 2, cy + sy / 2)
    if axis == "x":
        return extrude_side(rounded_rect(sz, sy, radius, seg) + [cz, cy], cx - sx / 2, cx + sx / 2)
    return extrude_front(rounded_rect(sx, sy, radius, seg) + [cx, cy], cz - sz / 2, cz + sz / 2)


def pillow(center: Vec, size: Vec, radius: float, seg: int = 4) -> Manifold:
    """Box rounded on all edges (a cushion): hull of eight small spheres."""
    c = np.asarray(center, float)
    half = np.maximum(np.asarray(size, float) / 2 - radius, 1e-4)
    balls = [sphere(c + half * np.array(s), radius, seg * 2)
             for s in ((1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1),
                       (-1, 1, 1), (-1, 1, -1), (-1, -1, 1), (-1, -1, -1))]
    return Manifold.batch_hull(balls)


def rot_x(m: Manifold, deg: float, pivot: Vec = (0.0, 0.0, 0.0)) -> Manifold:
    """Rotate about an x-parallel axis through ``pivot``."""
    p = tuple(float(v) for v in pivot)
    return m.translate(tuple(-v for v in p)).rotate((float(deg), 0.0, 0.0)).translate(p)


def rot_y(m: Manifold, deg: float, pivot: Vec = (0.0, 0.0, 0.0)) -> Manifold:
    """Rotate about a y-parallel (vertical) axis through ``pivot``."""
    p = tuple(float(v) for v in pivot)
    return m.translate(tuple(-v for v in p)).rotate((0.0, float(deg), 0.0)).translate(p)


def rot_z(m: Manifold, deg: float, pivot: Vec = (0.0, 0.0, 0.0)) -> Manifold:
    """Rotate about a z-parallel axis through ``pivot``."""
    p = tuple(float(v) for v in pivot)
    return m.translate(tuple(-v for v in p)).rotate((0.0, 0.0, float(deg))).translate(p)


def mirror_x(m: Manifold) -> Manifold:
    """Mirror through the plane x = 0."""
    return m.mirror((1.0, 0.0, 0.0))


def union(parts: Sequence[Manifold]) -> Manifold:
    """Boolean union of several solids."""
    parts = [p for p in parts if not p.is_empty()]
    if not parts:
        return Manifold()
    return Manifold.batch_boolean(list(parts), OpType.Add)


def with_mirror(m: Manifold) -> Manifold:
    """``m`` together with its mirror image through x = 0."""
    return union([m, mirror_x(m)])


class Assembly:
    """Coloured parts unioned into one watertight mesh with per-face colours."""

    def __init__(self) -> None:
        self._parts: list[tuple[Manifold, Colour]] = []

    def add(self, solid: Manifold, colour: Colour) -> Manifold:
        """Add a solid painted with ``colour`` (RGB 0-255); returns it."""
        if not solid.is_empty():
            self._parts.append((solid, tuple(int(c) for c in colour)))
        return solid

    def mark(self) -> int:
        """Number of parts so far (for :meth:`turn_since`)."""
        return len(self._parts)

    def turn_since(self, mark: int, degrees: float, pivot: Vec = (0.0, 0.0, 0.0)) -> None:
        """Rotate every part added since ``mark`` about the vertical axis through ``pivot``."""
        self._parts[mark:] = [(rot_y(m, degrees, pivot), c) for m, c in self._parts[mark:]]

    def add_mirrored(self, solid: Manifold, colour: Colour) -> None:
        """Add ``solid`` and its mirror image through x = 0."""
        self.add(with_mirror(solid), colour)

    def to_trimesh(self) -> trimesh.Trimesh:
        """Union every part; faces keep the colour of the part they come from."""
        colours: dict[int, Colour] = {}
        solids = []
        for solid, colour in self._parts:
            tagged = solid.as_original()
            colours[tagged.original_id()] = colour
            solids.append(tagged)
        merged = Manifold.batch_boolean(solids, OpType.Add)
        out = merged.to_mesh()
        faces = np.asarray(out.tri_verts, dtype=np.int64)
        verts = np.asarray(out.vert_properties, dtype=np.float64)[:, :3]
        face_rgb = np.full((len(faces), 3), 160, dtype=np.uint8)
        bounds = np.asarray(out.run_index, dtype=np.int64) // 3
        for k, oid in enumerate(out.run_original_id):
            face_rgb[bounds[k]:bounds[k + 1]] = colours.get(int(oid), (160, 160, 160))
        rgba = np.concatenate([face_rgb, np.full((len(faces), 1), 255, np.uint8)], axis=1)
        mesh = trimesh.Trimesh(verts, faces, face_colors=rgba, process=False)
        return mesh
