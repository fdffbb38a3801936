"""``generate(category, seed)``: one procedural, watertight, coloured mesh of a category."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

from recon_cli.data.categories import SYNSETS, resolve_category
from recon_cli.data.synth import electronics, furniture, misc, seating, vehicles
from recon_cli.data.synth.parts import Assembly
from recon_cli.errors import InputError

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


def category_name(category: str) -> str:
    """Short name for a short name or synset id."""
    return SYNSETS[resolve_category(category)]


def generate(category: str, seed: int) -> trimesh.Trimesh:
    """A watertight mesh of ``category`` (name or synset) in the canonical frame (+y up, front +z).

    Deterministic for ``(category, seed)``. Units are roughly metres (the dataset writer normalises
    to the unit box). Faces carry their part's colour in ``mesh.visual.face_colors``.
    """
    name = category_name(category)
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    synset_index = int(resolve_category(name))
    rng = np.random.default_rng([int(seed), synset_index])
    mesh = GENERATORS[name](rng).to_trimesh()
    if len(mesh.faces) == 0:  # pragma: no cover - every generator adds solid parts
        raise InputError(f"procedural {name} seed {seed} produced an empty mesh")
    return mesh
