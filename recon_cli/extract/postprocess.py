"""Dense field -> mesh in the normalised frame; simplification and normals."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from recon_cli.extract.grid import PADDING, box_size
from recon_cli.extract.marching_cubes import marching_cubes

#: Value the field is padded with before marching cubes, so that meshes come out closed.
PAD_VALUE = -1e6


def empty_mesh() -> trimesh.Trimesh:
    """A mesh with no vertices and no faces (what a failed extraction returns)."""
    return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), process=False)


def grid_to_mesh(
    values: np.ndarray | torch.Tensor, level: float, *, padding: float = PADDING, backend: str = "pymcubes"
) -> trimesh.Trimesh:
    """Marching cubes on an (R+1)^3 field padded by one :data:`PAD_VALUE` layer.

    Vertices are mapped back to the world frame: lattice index p -> box * (p / R - 0.5)
    (the padding layer shifts indices by one, which is undone first), so they lie in
    [-box/2, box/2]^3. Faces are oriented outwards; an empty field gives :func:`empty_mesh`.
    """
    resolution = values.shape[0] - 1
    if isinstance(values, torch.Tensor):
        padded = torch.nn.functional.pad(values[None, None], (1, 1, 1, 1, 1, 1), value=PAD_VALUE)[0, 0]
    else:
        padded = np.pad(values, 1, mode="constant", constant_values=PAD_VALUE)
    verts, faces = marching_cubes(padded, level, backend=backend)
    if len(faces) == 0:
        return empty_mesh()
    verts = box_size(padding) * ((verts - 1.0) / resolution - 0.5)
    return trimesh.Trimesh(verts, faces, process=False)


def simplify(mesh: trimesh.Trimesh, face_count: int) -> trimesh.Trimesh:
    """Quadric decimation (fast_simplification via trimesh) down to about ``face_count`` faces."""
    if face_count < 4:
        raise ValueError(f"face_count must be at least 4, got {face_count}")
    # fast_simplification sometimes stalls above the target on flat, sharp-edged meshes;
    # a further pass on its output usually gets there.
    for _ in range(3):
        if len(mesh.faces) <= face_count:
            break
        mesh = mesh.simplify_quadric_decimation(face_count=face_count)
    return mesh


def vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) (zeros for an empty mesh)."""
    if len(mesh.faces) == 0:
        return np.zeros((len(mesh.vertices), 3))
    return np.asarray(mesh.vertex_normals)
