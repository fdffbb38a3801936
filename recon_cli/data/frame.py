"""The canonical object frame and rotations into it.

Every dataset ``recon`` writes uses the frame of the OccNet-preprocessed
ShapeNet v1 data (see DATA.md): **+y is up and the object's front faces +x**
(a chair's or bench's back-rest sits at -x, a car is longest along x with its
nose at +x, a bench's or table's long side runs along z).

A source frame is described by the direction of "up" and of "front" in the
source's own axes, e.g. ``up="+z", front="-y"``; :func:`frame_rotation`
returns the proper rotation R (3x3) with canonical = R @ source. Named frames:
``shapenet-v1`` (the canonical frame itself) and ``shapenet-v2``
(ShapeNetCore v2 ``model_normalized.obj``: +y up, front -z, so that
(x, y, z)_v1 = (-z, y, x)_v2).
"""

from __future__ import annotations

import numpy as np
import trimesh

from recon_cli.errors import InputError

#: name -> (up, front) in the source's axes.
NAMED_FRAMES: dict[str, tuple[str, str]] = {
    "shapenet-v1": ("+y", "+x"),
    "shapenet-v2": ("+y", "-z"),
}

_AXES = {"x": 0, "y": 1, "z": 2}


def parse_axis(text: str) -> np.ndarray:
    """'+x', '-z', 'y' (= '+y') -> unit vector (3,)."""
    key = str(text).strip().lower()
    sign = -1.0 if key.startswith("-") else 1.0
    key = key.lstrip("+-")
    if key not in _AXES or len(str(text).strip()) > 2:
        raise InputError(f"bad axis {text!r}: use one of +x, -x, +y, -y, +z, -z")
    out = np.zeros(3)
    out[_AXES[key]] = sign
    return out


def frame_rotation(up: str = "+y", front: str = "+x") -> np.ndarray:
    """Rotation R (3,3) taking a source frame (``up``, ``front`` as axis names) to +y up, front +x."""
    u, f = parse_axis(up), parse_axis(front)
    if abs(float(u @ f)) > 0.5:
        raise InputError(f"up {up!r} and front {front!r} must be different axes")
    # rows: the source directions that become +x (front), +y (up) and +z (front x up)
    return np.stack([f, u, np.cross(f, u)])


def named_frame(name: str) -> tuple[str, str]:
    """(up, front) of a named source frame."""
    key = name.strip().lower()
    if key not in NAMED_FRAMES:
        raise InputError(f"unknown frame {name!r}; valid: {', '.join(NAMED_FRAMES)}")
    return NAMED_FRAMES[key]


def resolve_frame(frame: str | None = None, up: str | None = None, front: str | None = None) -> np.ndarray:
    """Rotation for ``--frame NAME`` and/or ``--up``/``--front`` (explicit axes override the named frame)."""
    base_up, base_front = named_frame(frame) if frame else NAMED_FRAMES["shapenet-v1"]
    return frame_rotation(up or base_up, front or base_front)


def to_canonical(mesh: trimesh.Trimesh, rotation: np.ndarray | None) -> trimesh.Trimesh:
    """A copy of ``mesh`` rotated by ``rotation`` (3,3); None or the identity returns ``mesh`` itself."""
    if rotation is None:
        return mesh
    R = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    if np.allclose(R, np.eye(3)):
        return mesh
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise InputError("frame rotation must be a proper rotation matrix")
    T = np.eye(4)
    T[:3, :3] = R
    out = mesh.copy()
    out.apply_transform(T)
    return out
