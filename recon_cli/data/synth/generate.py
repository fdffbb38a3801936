"""``generate(category, seed)``: one procedural, watertight, coloured mesh of a category."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

from recon_cli.data.categories import SYNSETS, resolve_category
from recon_cli.data.frame import frame_rotation, to_canonical
from recon_cli.data.synth import electronics, furniture, misc, seating, vehicles
from recon_cli.data.synth.parts import Assembly
from recon_cli.errors import InputError

#: The frame the part generators build in (+y up, the object's front towards +z); ``generate`` turns
#: every mesh from it into the canonical frame (+y up, front +x) in this one place.
BUILD_FRAME: tuple[str, str] = ("+y", "+z")

#: category short name -> generator drawing one Assembly from a numpy Generator.
GENERATORS: dict[str, Callable[[np.random.Generator], Assembly]] = {
    "airplane": vehicles.airplane,
    "bench": seating.bench,
    "cabinet": furniture.cabinet,
    "car": vehicles.car,
    "chair": seating.chair,
    "display": electronics.display,
    "lamp": misc.lamp,
    "loudspeaker": electronics.loudspeaker,
    "rifle": misc.rifle,
    "sofa": seating.sofa,
    "table": furniture.table,
    "telephone": electronics.telephone,
    "vessel": vehicles.vessel,
}


#: category short name -> the weighted family draw of its generator (first draw from its rng).
FAMILY_DRAWS: dict[str, tuple[str, ...]] = {
    "airplane": vehicles.AIRPLANE_DRAW,
    "bench": seating.BENCH_DRAW,
    "cabinet": furniture.CABINET_DRAW,
    "car": vehicles.CAR_DRAW,
    "chair": seating.CHAIR_DRAW,
    "display": electronics.DISPLAY_DRAW,
    "lamp": misc.LAMP_DRAW,
    "loudspeaker": electronics.LOUDSPEAKER_DRAW,
    "rifle": misc.RIFLE_DRAW,
    "sofa": seating.SOFA_DRAW,
    "table": furniture.TABLE_DRAW,
    "telephone": electronics.TELEPHONE_DRAW,
    "vessel": vehicles.VESSEL_DRAW,
}


def families(category: str) -> list[str]:
    """The structurally different families of ``category`` (name or synset), in draw order."""
    return list(dict.fromkeys(FAMILY_DRAWS[category_name(category)]))


def _rng(name: str, seed: int) -> np.random.Generator:
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng([int(seed), int(resolve_category(name))])


def family_of(category: str, seed: int) -> str:
    """The family that ``generate(category, seed)`` builds (its generator's first draw)."""
    name = category_name(category)
    return str(_rng(name, seed).choice(FAMILY_DRAWS[name]))


def category_name(category: str) -> str:
    """Short name for a short name or synset id."""
    return SYNSETS[resolve_category(category)]


def generate(category: str, seed: int) -> trimesh.Trimesh:
    """A watertight mesh of ``category`` (name or synset) in the canonical frame (+y up, front +x).

    Deterministic for ``(category, seed)``. Units are roughly metres (the dataset writer normalises
    to the unit box). Faces carry their part's colour in ``mesh.visual.face_colors``.
    """
    name = category_name(category)
    mesh = to_canonical(GENERATORS[name](_rng(name, seed)).to_trimesh(), frame_rotation(*BUILD_FRAME))
    if len(mesh.faces) == 0:  # pragma: no cover - every generator adds solid parts
        raise InputError(f"procedural {name} seed {seed} produced an empty mesh")
    return mesh
