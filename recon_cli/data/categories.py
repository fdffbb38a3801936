"""The 13 categories of the standard ShapeNet split (Choy et al. 2016)."""

from __future__ import annotations

import logging

from recon_cli.errors import InputError

log = logging.getLogger("recon")

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
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
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
    "04090263": "rifle",
    "04256520": "sofa,couch,lounge",
    "04379243": "table",
    "04401088": "telephone,phone,telephone set",
    "04530566": "vessel,watercraft",
}


#: Wrong synset ids that recon < 0.2 wrote for table and rifle -> the ShapeNet ids. Datasets
#: written with them are still read (their folders keep the old name) with a warning.
LEGACY_SYNSETS: dict[str, str] = {"04379232": "04379243", "04090256": "04090263"}

_warned: set[str] = set()


def warn_legacy(synset: str, where: str = "") -> None:
    """Log (once per id and place) that ``synset`` is an old wrong id of recon < 0.2."""
    key = f"{synset}@{where}"
    if synset in LEGACY_SYNSETS and key not in _warned:
        _warned.add(key)
        new = LEGACY_SYNSETS[synset]
        place = f"{where}: " if where else ""
        log.warning("%ssynset %s is the old wrong id of %s written by recon < 0.2 (ShapeNet: %s); "
                    "read as %s", place, synset, SYNSETS[new], new, SYNSETS[new])


def canonical_synset(synset: str) -> str:
    """The ShapeNet synset id for ``synset`` (old wrong ids of table/rifle map to the right ones)."""
    return LEGACY_SYNSETS.get(synset, synset)


def standard_name(synset: str) -> str | None:
    """Short name of a standard category (old wrong ids included), None for other ids."""
    return SYNSETS.get(canonical_synset(synset))


def resolve_category(name_or_synset: str) -> str:
    """Return the synset id for a short name or a synset id; raise on unknown.

    An old wrong id (``LEGACY_SYNSETS``) resolves to the ShapeNet id, with a warning.
    """
    key = name_or_synset.strip()
    if key in SYNSETS:
        return key
    if key in LEGACY_SYNSETS:
        warn_legacy(key)
        return LEGACY_SYNSETS[key]
    if key.lower() in NAMES:
        return NAMES[key.lower()]
    valid = ", ".join(NAMES)
    raise InputError(f"unknown category {key!r}; valid names: {valid}")


def parse_categories(text: str | None) -> list[str] | None:
    """Parse 'chair,table' (names or synsets) into synset ids; None means all."""
    if text is None or not text.strip():
        return None
    return [resolve_category(part) for part in text.split(",") if part.strip()]
