"""Ray-cast renderer (embree through trimesh; no OpenGL) for the img_choy2016 views.

Camera convention (OpenCV style, as stored in cameras.npz): world +y is up;
``world_mat`` = [R|t] maps world points into the camera frame, whose x axis
points right, y down and z forward (into the scene). ``camera_mat`` = K holds
the focal length and principal point in pixels, so ``K @ (R @ x + t)``
divided by its third component gives (u, v) = (column, row) in pixel units,
with the centre of pixel (i, j) at (j + 0.5, i + 0.5).

Default framing: the camera looks at the origin (bounding-box centre) from
:attr:`RenderOptions.distance` = 1.6 at a random azimuth and an elevation of
25-30 degrees, focal 149.84 px at 137 px (35 mm lens on a 32 mm sensor, as in
the Choy et al. renders): a unit-size object covers roughly 70-80% of the
frame. Shading is Lambertian (ambient + key light + weak fill, fixed in the
camera frame, two-sided), flat per face, with per-face colours when the mesh
has them and a neutral light grey otherwise, on a white background. Meshes
that carry :class:`recon_cli.data.surface.SurfaceMaterials` (imported models)
are coloured by their materials: diffuse colour times the texture sampled at
the UV coordinates of each ray hit.
Anti-aliasing is adaptive: pixels at silhouettes and colour edges are
re-sampled with 2x2 rays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from recon_cli.data.surface import barycentric_hits, materials_of

#: Focal length of the Choy et al. renders at 137 px: 35 mm lens / 32 mm sensor * 137.
CHOY_FOCAL_137 = 35.0 / 32.0 * 137.0
NEUTRAL_GREY = (0.78, 0.78, 0.78)


@dataclass(frozen=True)
class RenderOptions:
    """How the views of a model are rendered; the defaults match the standard renders."""

    size: int = 137
    n_views: int = 24
    elevation_deg: tuple[float, float] = (25.0, 30.0)    # drawn uniformly per view
    background: tuple[int, int, int] = (255, 255, 255)
    randomize: bool = False      # domain randomisation: light, material colour jitter, background
    distance: float = 1.6        # camera distance from the origin (unit-size object)
    focal: float = CHOY_FOCAL_137 / 137.0   # focal length as a fraction of the image side
    antialias: bool = True       # 2x2 supersampling of edge pixels
    ambient: float = 0.35
    key_light: float = 0.6
    fill_light: float = 0.15
    jpeg_quality: int = 95


def intrinsics(size: int, focal: float) -> np.ndarray:
    """K (3,3) in pixels for a square image of side ``size``."""
    f = focal * size
    return np.array([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]])


def look_at(azimuth_deg: float, elevation_deg: float, distance: float) -> np.ndarray:
    """[R|t] (3,4) of a camera on a sphere around the origin looking at it (+y up).

    Azimuth 0 puts the camera on the +z axis (the object's side), azimuth 90 on +x (facing its front).
    """
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    centre = distance * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    forward = -centre / np.linalg.norm(centre)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return np.concatenate([R, (-R @ centre)[:, None]], axis=1)


def render_views(mesh: trimesh.Trimesh, options: RenderOptions, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``options.n_views`` views: images uint8 (V,H,W,3), K (V,3,3), [R|t] (V,3,4).

    Azimuths are uniform in [0, 360), elevations uniform in ``elevation_deg``.
    All views are ray cast in one embree call.
    """
    V = options.n_views
    azimuths = rng.uniform(0.0, 360.0, V)
    elevations = rng.uniform(*options.elevation_deg, V)
    K = np.repeat(intrinsics(options.size, options.focal)[None], V, axis=0)  # (V,3,3)
    Rt = np.stack([look_at(a, e, options.distance) for a, e in zip(azimuths, elevations)])  # (V,3,4)
    images = _render(mesh, K, Rt, options.size, options, rng)
    return images, K.astype(np.float32), Rt.astype(np.float32)


def render_image(mesh: trimesh.Trimesh, K: np.ndarray, Rt: np.ndarray, *, size: int = 137,
                 options: RenderOptions = RenderOptions(), rng: np.random.Generator | None = None) -> np.ndarray:
    """Render one view with camera K (3,3) and [R|t] (3,4): (size,size,3) uint8."""
    rng = rng if rng is not None else np.random.default_rng(0)
    return _render(mesh, np.asarray(K, float)[None], np.asarray(Rt, float)[None], size, options, rng)[0]


@dataclass
class _Shading:
    """Per-model albedo and per-view lighting (V views)."""

    colors: np.ndarray       # (F,3) float albedo in [0,1]
    tint: np.ndarray         # (V,3) colour jitter multiplier
    light_key: np.ndarray    # (V,3) direction towards the key light, camera frame
    light_fill: np.ndarray   # (V,3)
    gains: np.ndarray        # (V,3) ambient, key, fill intensities
    background: np.ndarray   # (V,3) float in [0,1]


def face_albedo(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F,3) albedo in [0,1]: the mesh's face colours when it has any, a light grey otherwise.

    A mesh with :class:`recon_cli.data.surface.SurfaceMaterials` uses their flat colours here (the
    renderer samples its textures per hit).
    """
    mats = materials_of(mesh)
    if mats is not None:
        return mats.albedo()
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    try:
        if kind == "texture":
            visual = visual.to_color()
            kind = visual.kind
        if kind in ("face", "vertex"):
            colors = np.asarray(visual.face_colors, dtype=np.float64)[:, :3] / 255.0
            if colors.shape == (len(mesh.faces), 3):
                return colors
    except Exception:  # noqa: BLE001 - a broken material falls back to grey
        pass
    return np.tile(np.array(NEUTRAL_GREY), (len(mesh.faces), 1))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _shading(mesh: trimesh.Trimesh, options: RenderOptions, n_views: int, rng: np.random.Generator) -> _Shading:
    """Standard lighting, or with ``randomize`` a random light, colour jitter and background per view."""
    V = n_views
    key_dir = np.tile([-0.5, -0.8, -1.0], (V, 1))   # from the upper left, in front (camera: y down, z forward)
    fill_dir = np.tile([0.8, -0.2, -1.0], (V, 1))
    gains = np.tile([options.ambient, options.key_light, options.fill_light], (V, 1))
    tint = np.ones((V, 3))
    background = np.tile(np.asarray(options.background, float) / 255.0, (V, 1))
    if options.randomize:
        key_dir = key_dir + rng.normal(0.0, 0.5, (V, 3))
        key_dir[:, 2] = -np.abs(key_dir[:, 2]) - 0.2
        gains = gains * np.stack([rng.uniform(0.8, 1.2, V), rng.uniform(0.7, 1.3, V), rng.uniform(0.5, 1.5, V)], 1)
        tint = rng.uniform(0.85, 1.15, (V, 3))
        plain = rng.uniform(0.0, 1.0, V) < 0.5   # half of the views keep the standard background
        grey = rng.uniform(0.75, 1.0, (V, 1)) + rng.normal(0.0, 0.04, (V, 3))
        background = np.where(plain[:, None], background, np.clip(grey, 0.0, 1.0))
    return _Shading(face_albedo(mesh).astype(np.float32), tint.astype(np.float32),
                    _unit(key_dir).astype(np.float32), _unit(fill_dir).astype(np.float32),
                    gains.astype(np.float32), background.astype(np.float32))


def _pixel_window(mesh: trimesh.Trimesh, K: np.ndarray, Rt: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """Pixel box (r0, r1, c0, c1) that can see the mesh: its bounding box corners projected."""
    corners = trimesh.bounds.corners(mesh.bounds)  # (8,3)
    cam = corners @ Rt[:, :3].T + Rt[:, 3]
    if np.any(cam[:, 2] <= 1e-6):
        return 0, size, 0, size
    uv = cam @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    c0, r0 = np.floor(uv.min(axis=0)).astype(int) - 1
    c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    return max(r0, 0), min(r1, size), max(c0, 0), min(c1, size)


def _rays(K: np.ndarray, Rt: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World origins and unit directions of rays through pixel coordinates uv (N,2)."""
    R, t = Rt[:, :3], Rt[:, 3]
    centre = -R.T @ t
    d_cam = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ np.linalg.inv(K).T  # (N,3)
    d_world = d_cam @ R  # R^T d for each row
    d_world /= np.linalg.norm(d_world, axis=1, keepdims=True)
    origins = np.empty(d_world.shape, dtype=np.float32)
    origins[:] = centre
    return origins, d_world.astype(np.float32)


def _first_hits(mesh: trimesh.Trimesh, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Index of the first face hit by each ray (-1 = miss); directions must be unit length."""
    scene = getattr(mesh.ray, "_scene", None)
    if scene is not None and hasattr(scene, "run"):  # embree: skip trimesh's copies and re-normalisation
        return scene.run(origins, dirs)
    return mesh.ray.intersects_first(origins, dirs)


def _shade(mesh: trimesh.Trimesh, tri: np.ndarray, view_idx: np.ndarray, dirs: np.ndarray, Rt: np.ndarray,
           sh: _Shading) -> np.ndarray:
    """Colours (N,3) in [0,1] of rays (world directions ``dirs``) of views ``view_idx`` hitting faces ``tri``."""
    out = sh.background[view_idx].copy()  # (N,3)
    hit = np.flatnonzero(tri >= 0)
    if len(hit) == 0:
        return out
    views, faces = view_idx[hit], tri[hit]
    R = Rt[:, :, :3].astype(np.float32)  # (V,3,3); world vector = R^T camera vector
    key_w = np.einsum("vij,vi->vj", R, sh.light_key)[views]    # (H,3)
    fill_w = np.einsum("vij,vi->vj", R, sh.light_fill)[views]
    n = np.asarray(mesh.face_normals, dtype=np.float32)[faces]  # (H,3)
    sign = np.where(np.einsum("ij,ij->i", n, dirs[hit]) > 0, -1.0, 1.0).astype(np.float32)
    n *= sign[:, None]  # two-sided: the normal faces the camera
    albedo = sh.colors[faces]
    mats = materials_of(mesh)
    if mats is not None and mats.textures:
        textured = np.flatnonzero(mats.face_texture[faces] >= 0)
        if len(textured):
            tv = views[textured]
            centres = -np.einsum("vji,vj->vi", R, Rt[:, :, 3].astype(np.float32))[tv]  # camera centres -R^T t
            tris = np.asarray(mesh.triangles, dtype=np.float64)[faces[textured]]
            bary = barycentric_hits(tris, centres.astype(np.float64), dirs[hit][textured].astype(np.float64))
            albedo = albedo.copy()
            albedo[textured] = mats.sample(faces[textured], bary)
    g = sh.gains[views]  # (H,3)
    lam = (g[:, 0] + g[:, 1] * np.clip(np.einsum("ij,ij->i", n, key_w), 0, None)
           + g[:, 2] * np.clip(np.einsum("ij,ij->i", n, fill_w), 0, None))
    out[hit] = np.clip(albedo * sh.tint[views] * lam[:, None], 0.0, 1.0)
    return out


def _render(mesh: trimesh.Trimesh, K: np.ndarray, Rt: np.ndarray, size: int, options: RenderOptions,
            rng: np.random.Generator) -> np.ndarray:
    V = len(K)
    sh = _shading(mesh, options, V, rng)
    images = np.empty((V, size, size, 3), dtype=np.float32)  # (V,H,W,3)
    images[:] = sh.background[:, None, None, :]
    # first pass: one ray per pixel centre inside each view's window, all views in one call
    views, pix, origins, dirs = [], [], [], []
    for v in range(V):
        r0, r1, c0, c1 = _pixel_window(mesh, K[v], Rt[v], size)
        if r1 <= r0 or c1 <= c0:
            continue
        rr, cc = np.mgrid[r0:r1, c0:c1]
        p = np.stack([rr.ravel(), cc.ravel()], axis=1)  # (N,2) row, col
        o, d = _rays(K[v], Rt[v], p[:, ::-1] + 0.5)
        views.append(np.full(len(p), v)); pix.append(p); origins.append(o); dirs.append(d)
    if not views:
        return _to_uint8(images)
    view_idx, pix_idx = np.concatenate(views), np.concatenate(pix)
    tri = _first_hits(mesh, np.concatenate(origins), np.concatenate(dirs))
    colors = _shade(mesh, tri, view_idx, np.concatenate(dirs), Rt, sh)
    images[view_idx, pix_idx[:, 0], pix_idx[:, 1]] = colors
    if options.antialias:
        _antialias(mesh, images, K, Rt, sh, view_idx, pix_idx, tri)
    return _to_uint8(images)


def _antialias(mesh: trimesh.Trimesh, images: np.ndarray, K: np.ndarray, Rt: np.ndarray, sh: _Shading,
               view_idx: np.ndarray, pix_idx: np.ndarray, tri: np.ndarray) -> None:
    """Replace edge pixels by the mean of 2x2 sub-pixel rays (in place)."""
    V, H, W, _ = images.shape
    ids = np.full((V, H, W), -1, dtype=np.int64)
    ids[view_idx, pix_idx[:, 0], pix_idx[:, 1]] = tri
    hit = ids >= 0
    edge = np.zeros_like(hit)
    for axis in (1, 2):
        diff = hit != np.roll(hit, 1, axis=axis)
        colour = np.abs(images - np.roll(images, 1, axis=axis)).max(axis=-1) > 0.08
        step = diff | colour
        edge |= step | np.roll(step, -1, axis=axis)
    v, r, c = np.nonzero(edge)
    if len(v) == 0:
        return
    offsets = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])
    sub_v = np.repeat(v, 4)
    sub_uv = np.stack([np.repeat(c, 4), np.repeat(r, 4)], axis=1) + np.tile(offsets, (len(v), 1))
    origins = np.empty((len(sub_v), 3), np.float32)
    dirs = np.empty((len(sub_v), 3), np.float32)
    for view in np.unique(sub_v):
        sel = sub_v == view
        origins[sel], dirs[sel] = _rays(K[view], Rt[view], sub_uv[sel])
    sub_tri = _first_hits(mesh, origins, dirs)
    colors = _shade(mesh, sub_tri, sub_v, dirs, Rt, sh)
    images[v, r, c] = colors.reshape(-1, 4, 3).mean(axis=1)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)
