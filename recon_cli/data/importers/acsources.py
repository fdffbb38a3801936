"""FlightGear (AI aircraft, ships) and TORCS (cars) models: AC3D files in the canonical frame.

Axis conventions, checked by rendering the models from the +x axis:

- FlightGear ``.ac``: +y up, the nose / bow at -x (FlightGear's body frame has x aft);
- TORCS ``.acc``: +y up, the nose at +x (already recon's frame).

TORCS draws wheels separately at run time, so its car bodies come without wheels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from recon_cli.data.frame import frame_rotation, to_canonical
from recon_cli.data.importers.ac3d import read_ac3d

FLIGHTGEAR_FRAME = ("+y", "-x")
TORCS_FRAME = ("+y", "+x")


def load_ac_model(path: str, frame: tuple[str, str], texture_dirs: tuple[str, ...] = (), label: str = ""
                  ) -> trimesh.Trimesh:
    """An AC3D model in recon's frame; warnings (prefixed with ``label``) in ``mesh.metadata``."""
    mesh, warnings = read_ac3d(path, texture_dirs=[Path(d) for d in texture_dirs])
    out = to_canonical(mesh, frame_rotation(*frame))
    prefix = f"{label}: " if label else ""
    out.metadata["warnings"] = [prefix + w for w in warnings]
    return out


def flightgear_aircraft(ai_root: Path) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(key, .ac path, texture folders) for each aircraft folder of ``AI/Aircraft``.

    One model per folder: ``Models/<folder>.ac`` when present, else the largest ``.ac`` in it.
    Texture folders: the model's own, the aircraft's ``Textures`` and its livery subfolders (sorted).
    """
    out = []
    for folder in sorted(p for p in ai_root.iterdir() if p.is_dir()):
        files = sorted(folder.rglob("*.ac"))
        if not files:
            continue
        named = [f for f in files if f.stem.lower() == folder.name.lower()]
        chosen = named[0] if named else max(files, key=lambda f: (f.stat().st_size, str(f)))
        out.append((f"AI/Aircraft/{folder.name}", chosen, _texture_dirs(folder, chosen)))
    return out


def flightgear_ships(maritime_root: Path) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(key, .ac path, texture folders) for each ``.ac`` under ``Models/Maritime``."""
    out = []
    for f in sorted(maritime_root.rglob("*.ac")):
        rel = f.relative_to(maritime_root).with_suffix("")
        out.append((f"Models/Maritime/{rel.as_posix()}", f, (str(f.parent),)))
    return out


def _texture_dirs(folder: Path, model: Path) -> tuple[str, ...]:
    dirs = [model.parent, folder, folder / "Models", folder / "Textures"]
    tex = folder / "Textures"
    if tex.is_dir():
        dirs += sorted(p for p in tex.rglob("*") if p.is_dir())
    return tuple(str(d) for d in dirs if d.is_dir())


def torcs_cars(cars_root: Path) -> list[tuple[str, Path, tuple[str, ...]]]:
    """(key, .acc path, texture folders): the full-detail ``<car>/<car>.acc`` of each car folder."""
    out = []
    for folder in sorted(p for p in cars_root.iterdir() if p.is_dir()):
        model = folder / f"{folder.name}.acc"
        if model.is_file():
            out.append((f"cars/{folder.name}", model, (str(folder),)))
    return out


def principal_length_axis(mesh: trimesh.Trimesh) -> int:
    """Index of the longest horizontal bounding-box side (0 = x, 2 = z)."""
    ext = np.asarray(mesh.extents)
    return 0 if ext[0] >= ext[2] else 2
