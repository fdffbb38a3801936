"""The 13 categories of the standard ShapeNet split (Choy et al. 2016)."""

from __future__ import annotations

from recon_cli.errors import InputError

#: synset id -> short name, in the order of the published tables.
SYNSETS: dict[str, str] = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "loudspeaker",
    "04090256": "rifle",
    "04256520": "sofa",
    "04379232": "table",
    "04401088": "telephone",
    "04530566": "vessel",
}

#: short name -> synset id.
NAMES: dict[str, str] = {name: synset for synset, name in SYNSETS.items()}

#: Longer names as written in ShapeNet's metadata.yaml.
LONG_NAMES: dict[str, str] = {
    "02691156": "airplane,aeroplane,plane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car,auto,automobile,machine,motorcar",
    "03001627": "chair",
    "03211117": "display,video display",
    "03636649": "lamp",
    "03691459": "loudspeaker,speaker,speaker unit,loudspeaker system,speaker system",
    "04090256": "rifle",
    "04256520": "sofa,couch,lounge",
    "04379232": "table",
    "04401088": "telephone,phone,telephone set",
    "04530566": "vessel,watercraft",
}


def resolve_category(name_or_synset: str) -> str:
    """Return the synset id for a short name or a synset id; raise on unknown."""
    key = name_or_synset.strip()
    if key in SYNSETS:
        return key
    if key.lower() in NAMES:
        return NAMES[key.lower()]
    valid = ", ".join(NAMES)
    raise InputError(f"unknown category {key!r}; valid names: {valid}")


def parse_categories(text: str | None) -> list[str] | None:
    """Parse 'chair,table' (names or synsets) into synset ids; None means all."""
    if text is None or not text.strip():
        return None
    return [resolve_category(part) for part in text.split(",") if part.strip()]
