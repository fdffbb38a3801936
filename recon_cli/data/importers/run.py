"""``recon data import``: free 3D model collections from Debian packages -> ShapeNet layout.

Sources: ``sweethome3d`` (packages sweethome3d-furniture and sweethome3d), ``flightgear``
(flightgear-data-ai, flightgear-data-models) and ``torcs`` (torcs-data). Each is found in the
installed package files, or in ``--from`` paths: ``.deb`` files (or a folder of them; the needed
members are extracted safely into ``ROOT/.import/``), ``.sh3f``/``.jar`` catalogues or unpacked
folders. Every model is mapped to a category by the reviewed table ``mapping.yaml``, loaded with
its materials, put into the canonical frame and written by the dataset builder (points, point
cloud, voxels, 24 renders with cameras, fixed-seed splits, resume, workers). ``ROOT/SOURCES.csv``,
``ROOT/ATTRIBUTION.md`` and ``ROOT/IMPORT_SKIPPED.csv`` record where each model comes from, its
author and licence, and every model left out and why.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recon_cli.data import layout
from recon_cli.data.build import BuildReport, ModelJob, ModelResult, assign_splits, write_dataset
from recon_cli.data.categories import LONG_NAMES, NAMES
from recon_cli.data.frame import frame_rotation, to_canonical
from recon_cli.data.importers import acsources, sweethome3d
from recon_cli.data.importers.archive import deb_control, extract_deb
from recon_cli.data.importers.mapping import load_mapping
from recon_cli.data.render import RenderOptions
from recon_cli.errors import InputError, ReconError
from recon_cli.io.atomic import atomic_write_text

SOURCES = ("sweethome3d", "flightgear", "torcs")
LICENCE_CLASSES = ("cc0", "cc-by", "gpl", "fal")

#: Debian packages of each source.
PACKAGES: dict[str, tuple[str, ...]] = {
    "sweethome3d": ("sweethome3d-furniture", "sweethome3d"),
    "flightgear": ("flightgear-data-ai", "flightgear-data-models"),
    "torcs": ("torcs-data",),
}

#: Package files each source needs (paths inside the package; ``doc`` for version/copyright).
_WANTED: dict[str, re.Pattern] = {
    "sweethome3d-furniture": re.compile(r"^usr/share/sweethome3d/furniture/[^/]+\.sh3f$|^usr/share/doc/"),
    "sweethome3d": re.compile(r"^usr/share/sweethome3d/sweethome3d\.jar$|^usr/share/doc/"),
    "flightgear-data-ai": re.compile(r"^usr/share/games/flightgear/AI/Aircraft/|^usr/share/doc/"),
    "flightgear-data-models": re.compile(r"^usr/share/games/flightgear/Models/Maritime/|^usr/share/doc/"),
    "torcs-data": re.compile(r"^usr/share/games/torcs/cars/|^usr/share/doc/"),
}

#: Licences per Sweet Home 3D catalogue file (from the packages' debian/copyright files).
SH3D_LICENCES: dict[str, tuple[str, str, str]] = {   # stem -> (SPDX-like id, class, copyright holder)
    "BlendSwap-CC-0": ("CC0-1.0", "cc0", "Blend Swap contributors; converted by Emmanuel Puybaret / eTeks"),
    "BlendSwap-CC-BY": ("CC-BY-3.0", "cc-by", "Blend Swap contributors"),
    "KatorLegaz": ("CC-BY-3.0-US", "cc-by", "2003-2008 Andrew Kator & Jennifer Legaz"),
    "Reallusion": ("CC-BY-3.0-US", "cc-by", "2008-2011 Reallusion"),
    "Scopia": ("CC-BY-3.0", "cc-by", "2010-2012 Scopia Visual Interfaces Systems, s.l."),
    "sweethome3d": ("GPL-2.0-or-later", "gpl", "2006-2022 Emmanuel Puybaret / eTeks"),
}
#: TORCS cars under the Free Art License (debian/copyright of torcs-data); the others are GPL-2+.
TORCS_FAL_CARS = {"acura-nsx-sz", "baja-bug", "car1-trb1", "car1-ow1", "car8-trb1", "car2-trb1", "car6-trb1",
                  "car7-trb1", "car1-stock2", "car3-trb1", "car1-trb3", "car5-trb1", "car1-stock1", "car4-trb1"}
LICENCE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "CC-BY-3.0-US": "https://creativecommons.org/licenses/by/3.0/us/",
    "GPL-2.0-or-later": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "FAL-1.3": "https://artlibre.org/licence/lal/en/",
}
SOURCES_CSV, ATTRIBUTION_MD, SKIPPED_CSV, CACHE_DIR = "SOURCES.csv", "ATTRIBUTION.md", "IMPORT_SKIPPED.csv", ".import"
_SOURCE_COLUMNS = ["synset", "model", "category", "source", "package", "version", "file", "name", "author",
                   "licence"]


@dataclass
class Candidate:
    """One model of a source, before mapping."""

    source: str
    key: str
    model_id: str
    name: str
    package: str
    version: str
    file: str
    author: str
    licence: str
    licence_class: str
    loader: Callable
    tags: str = ""
    room: str = ""


@dataclass
class Skip:
    """A model left out, and why."""

    source: str
    key: str
    name: str
    reason: str
    category: str = ""


@dataclass
class ImportReport:
    """What ``import_dataset`` did."""

    build: BuildReport | None
    skipped: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)    # source -> category -> built

    def to_dict(self) -> dict:
        doc = self.build.to_dict() if self.build else {}
        doc.update({"counts": self.counts, "warnings": self.warnings,
                    "skipped": [vars(s) for s in self.skipped]})
        return doc


# --------------------------------------------------------------------------- locating package files


@dataclass
class _Tree:
    """An unpacked package tree (a folder mirroring /) and the package versions found for it."""

    root: Path
    versions: dict[str, str]


def _changelog_version(root: Path, package: str) -> str | None:
    path = root / "usr/share/doc" / package / "changelog.Debian.gz"
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            m = re.match(r"\S+ \(([^)]+)\)", fh.readline())
            return m.group(1) if m else None
    except (OSError, EOFError):
        return None


def _installed_version(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _extract_debs(debs: list[Path], cache: Path, warnings: list[str], packages: Sequence[str]) -> list[_Tree]:
    trees = []
    for deb in debs:
        try:
            control = deb_control(deb)
            package, version = control.get("Package", ""), control.get("Version", "unknown")
            if package not in packages:
                continue  # another source's package
            wanted = _WANTED[package]
            dest = cache / f"{package}_{re.sub(r'[^A-Za-z0-9.+~-]', '_', version)}"
            marker = dest / ".complete"
            if not marker.is_file():
                if dest.exists():
                    shutil.rmtree(dest)
                extract_deb(deb, dest, lambda name, w=wanted: bool(w.search(name)))
                marker.write_text(deb.name)
            trees.append(_Tree(dest, {package: version}))
        except ReconError as exc:
            warnings.append(f"{deb.name}: {exc.message if hasattr(exc, 'message') else exc}; skipped")
    return trees


def _locate(source: str, from_paths: Sequence[Path], cache: Path, warnings: list[str]
            ) -> tuple[list[_Tree], list[Path]]:
    """(package trees, loose catalogue files) for a source: --from paths, else the installed files."""
    packages = PACKAGES[source]
    if not from_paths:
        return [_Tree(Path("/"), {p: _installed_version(p) or _changelog_version(Path("/"), p) or "unknown"
                                  for p in packages})], []
    trees: list[_Tree] = []
    loose: list[Path] = []
    debs: list[Path] = []
    for path in from_paths:
        path = Path(path)
        if not path.exists():
            raise InputError("--from path does not exist", path=path)
        if path.is_file() and path.suffix == ".deb":
            debs.append(path)
        elif path.is_file() and path.suffix.lower() in (".sh3f", ".jar"):
            loose.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.glob("*.deb") if p.name.split("_")[0] in packages)
            debs += found
            loose += sorted(p for p in path.glob("*.sh3f")) if source == "sweethome3d" else []
            if not found:
                trees.append(_Tree(path, {p: _changelog_version(path, p) or "unknown" for p in packages}))
    trees += _extract_debs(list(dict.fromkeys(debs)), cache, warnings, packages)
    return trees, loose


def _find(tree: Path, rel: str) -> Path | None:
    """``tree/rel`` when it exists, else ``tree/<tail of rel>`` (a folder given at a deeper level)."""
    parts = rel.split("/")
    for k in range(len(parts)):
        cand = tree.joinpath(*parts[k:])
        if cand.exists():
            return cand
    return None


# --------------------------------------------------------------------------- enumerating models


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _sweethome3d(trees: list[_Tree], loose: list[Path], warnings: list[str]) -> list[Candidate]:
    catalogues: list[tuple[Path, str, str]] = []   # (file, package, version)
    for tree in trees:
        furniture = _find(tree.root, "usr/share/sweethome3d/furniture")
        if furniture is not None and furniture.is_dir():
            version = tree.versions.get("sweethome3d-furniture", "unknown")
            catalogues += [(p, "sweethome3d-furniture", version) for p in sorted(furniture.glob("*.sh3f"))]
        jar = _find(tree.root, "usr/share/sweethome3d/sweethome3d.jar")
        if jar is not None and jar.is_file():
            catalogues.append((jar, "sweethome3d", tree.versions.get("sweethome3d", "unknown")))
    for path in loose:
        package = "sweethome3d" if path.suffix.lower() == ".jar" else "sweethome3d-furniture"
        catalogues.append((path, package, "unknown"))
    out: list[Candidate] = []
    for path, package, version in dict.fromkeys(catalogues):
        try:
            header, entries = sweethome3d.read_catalog(path)
        except ReconError as exc:
            warnings.append(f"{path.name}: {exc.message}; catalogue skipped")
            continue
        stem = "sweethome3d" if path.suffix.lower() == ".jar" else path.stem
        licence, lclass, holder = SH3D_LICENCES.get(stem, (header.get("license", "unknown"), "unknown", ""))
        for e in entries:
            model_id = layout.sanitize_id(f"sh3d_{_slug(stem)}_{_slug(e.catalog_id.split('#')[-1])}")
            author = ", ".join(x for x in (e.creator, holder) if x and x not in holder)
            out.append(Candidate(
                "sweethome3d", e.catalog_id, model_id, e.name, package, version, f"{path.name}:{e.model}",
                author or holder, licence, lclass,
                functools.partial(sweethome3d.load_model, str(path), e.model, e.rotation, e.size, model_id),
                tags=e.tags, room="Doors and windows" if e.door_or_window else e.room))
    return out


def _flightgear(trees: list[_Tree]) -> list[Candidate]:
    out: list[Candidate] = []
    for tree in trees:
        ai = _find(tree.root, "usr/share/games/flightgear/AI/Aircraft")
        if ai is not None and ai.is_dir() and "flightgear-data-ai" in tree.versions:
            for key, path, tex in acsources.flightgear_aircraft(ai):
                out.append(_ac_candidate("flightgear", key, path, tex, "flightgear-data-ai",
                                         tree.versions["flightgear-data-ai"], ai.parent.parent, acsources.FLIGHTGEAR_FRAME))
        sea = _find(tree.root, "usr/share/games/flightgear/Models/Maritime")
        if sea is not None and sea.is_dir() and "flightgear-data-models" in tree.versions:
            for key, path, tex in acsources.flightgear_ships(sea):
                out.append(_ac_candidate("flightgear", key, path, tex, "flightgear-data-models",
                                         tree.versions["flightgear-data-models"], sea.parent.parent,
                                         acsources.FLIGHTGEAR_FRAME))
    return out


def _torcs(trees: list[_Tree]) -> list[Candidate]:
    out: list[Candidate] = []
    for tree in trees:
        cars = _find(tree.root, "usr/share/games/torcs/cars")
        if cars is not None and cars.is_dir() and "torcs-data" in tree.versions:
            for key, path, tex in acsources.torcs_cars(cars):
                out.append(_ac_candidate("torcs", key, path, tex, "torcs-data", tree.versions["torcs-data"],
                                         cars.parent, acsources.TORCS_FRAME))
    return out


def _ac_candidate(source: str, key: str, path: Path, tex: tuple[str, ...], package: str, version: str,
                  base: Path, frame: tuple[str, str]) -> Candidate:
    prefix = {"flightgear": "fg", "torcs": "torcs"}[source]
    short = key.replace("AI/Aircraft/", "").replace("Models/Maritime/", "sea/").replace("cars/", "")
    model_id = layout.sanitize_id(f"{prefix}_{_slug(short)}")
    if source == "torcs":
        car = key.split("/")[-1]
        fal = car in TORCS_FAL_CARS
        licence, lclass = ("FAL-1.3", "fal") if fal else ("GPL-2.0-or-later", "gpl")
        author = "Jean-Christophe Durieu, ViPeR (TORCS)" if fal else "Eric Espie, Christophe Guionneau (TORCS)"
    else:
        licence, lclass, author = "GPL-2.0-or-later", "gpl", "FlightGear contributors (Curtis L. Olson et al.)"
    try:
        rel = path.relative_to(base).as_posix()
    except ValueError:
        rel = path.name
    return Candidate(source, key, model_id, key.split("/")[-1], package, version, rel, author, licence, lclass,
                     functools.partial(acsources.load_ac_model, str(path), frame, tex, model_id))


# --------------------------------------------------------------------------- the import


def _turned(loader: Callable, up: str, front: str):  # noqa: ANN202 - trimesh.Trimesh
    """The model of ``loader`` turned so that its ``up``/``front`` axes become +y/+x (a mapping override)."""
    return to_canonical(loader(), frame_rotation(up, front))


def _limit_key(seed: int, model_id: str) -> str:
    return hashlib.sha1(f"{seed}/{model_id}".encode()).hexdigest()


def plan_import(sources: Sequence[str], root: Path, *, from_paths: Sequence[Path] = (),
                licences: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                limit: int | None = None, seed: int = 0, mapping_path: Path | None = None
                ) -> tuple[list[Candidate], dict[str, str], list[Skip], list[str]]:
    """(candidates to build, {model_id: category}, skipped, warnings) without building anything."""
    for s in sources:
        if s not in SOURCES:
            raise InputError(f"unknown source {s!r}; valid: {', '.join(SOURCES)}, all")
    for lic in licences or ():
        if lic not in LICENCE_CLASSES:
            raise InputError(f"unknown licence {lic!r}; valid: {', '.join(LICENCE_CLASSES)}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    warnings: list[str] = []
    skipped: list[Skip] = []
    chosen: list[Candidate] = []
    category_of: dict[str, str] = {}
    wanted_cats = None if not categories else {c for c in categories}
    cache = Path(root) / CACHE_DIR
    for source in sources:
        trees, loose = _locate(source, from_paths, cache, warnings)
        found = {"sweethome3d": lambda: _sweethome3d(trees, loose, warnings),
                 "flightgear": lambda: _flightgear(trees), "torcs": lambda: _torcs(trees)}[source]()
        if not found:
            warnings.append(f"{source}: no models found (install {' '.join(PACKAGES[source])} or pass --from)")
        mapping = load_mapping(source, mapping_path)
        keys = {c.key for c in found}
        if found:
            warnings += [f"{source}: mapping override {key!r} matches no model" for key in mapping.overrides
                         if key not in keys]
        used: set[str] = set()
        for cand in found:
            decision = mapping.decide(cand.key, name=cand.name, tags=cand.tags, room=cand.room)
            if decision.turn is not None:
                cand.loader = functools.partial(_turned, cand.loader, *decision.turn)
            if decision.category is None:
                skipped.append(Skip(source, cand.key, cand.name, decision.reason))
                continue
            if licences and cand.licence_class not in licences:
                skipped.append(Skip(source, cand.key, cand.name, f"licence {cand.licence} filtered out",
                                    decision.category))
                continue
            if wanted_cats is not None and decision.category not in wanted_cats:
                continue
            n, base = 2, cand.model_id
            while cand.model_id in used:
                cand.model_id, n = f"{base}_{n}", n + 1
            used.add(cand.model_id)
            chosen.append(cand)
            category_of[cand.model_id] = decision.category
    if limit is not None:
        by_cat: dict[str, list[Candidate]] = {}
        for cand in chosen:
            by_cat.setdefault(category_of[cand.model_id], []).append(cand)
        kept = set()
        for cat, cands in by_cat.items():
            for cand in sorted(cands, key=lambda c: _limit_key(seed, c.model_id))[:limit]:
                kept.add(cand.model_id)
        chosen = [c for c in chosen if c.model_id in kept]
    return chosen, category_of, skipped, warnings


def import_dataset(sources: Sequence[str], root: str | Path, *, from_paths: Sequence[Path] = (),
                   licences: Sequence[str] | None = None, categories: Sequence[str] | None = None,
                   limit: int | None = None, seed: int = 0, workers: int = 1, overwrite: bool = False,
                   split: Sequence[float] = (0.7, 0.1, 0.2), render: RenderOptions = RenderOptions(),
                   n_points: int = layout.N_POINTS, mapping_path: Path | None = None,
                   on_progress: Callable[[ModelResult], None] | None = None) -> ImportReport:
    """Import ``sources`` into the dataset ``root`` (see the module docstring)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cats = [c.strip().lower() for c in categories] if categories else None
    for c in cats or ():
        if c not in NAMES:
            raise InputError(f"unknown category {c!r}; valid names: {', '.join(NAMES)}")
    chosen, category_of, skipped, warnings = plan_import(
        sources, root, from_paths=from_paths, licences=licences, categories=cats, limit=limit, seed=seed,
        mapping_path=mapping_path)
    report = ImportReport(None, skipped, warnings)
    if not chosen:
        raise InputError("no models to import (see the warnings; install the packages or pass --from)", path=root)
    jobs = [ModelJob(NAMES[category_of[c.model_id]], c.model_id, c.loader, _job_seed(seed, c.model_id))
            for c in chosen]
    names = {NAMES[cat]: LONG_NAMES[NAMES[cat]] for cat in set(category_of.values())}
    build = write_dataset(root, jobs, names=names, split=split, seed=seed, workers=workers, overwrite=overwrite,
                          render=render, n_points=n_points, on_progress=on_progress)
    report.build = build
    ok = {(r.synset, r.model_id) for r in build.results if r.ok}
    failed = {r.model_id: r.error for r in build.results if not r.ok}
    by_id = {c.model_id: c for c in chosen}
    for model_id, error in failed.items():
        c = by_id[model_id]
        report.skipped.append(Skip(c.source, c.key, c.name, f"unreadable: {error}", category_of[model_id]))
    rows = []
    for c in chosen:
        synset = NAMES[category_of[c.model_id]]
        if (synset, c.model_id) in ok:
            rows.append([synset, c.model_id, category_of[c.model_id], c.source, c.package, c.version, c.file,
                         c.name, c.author, c.licence])
            report.counts.setdefault(c.source, {}).setdefault(category_of[c.model_id], 0)
            report.counts[c.source][category_of[c.model_id]] += 1
    _write_records(root, rows, report.skipped, split, seed)
    return report


def _job_seed(seed: int, model_id: str) -> int:
    return int.from_bytes(hashlib.sha1(f"import/{seed}/{model_id}".encode()).digest()[:4], "big")


def _merge_rows(path: Path, rows: list[list[str]], key_cols: int) -> list[list[str]]:
    """Rows of an earlier import in ``path`` (other models) followed by ``rows`` (this run wins)."""
    merged: dict[tuple, list[str]] = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            old = list(csv.reader(fh))[1:]
        for row in old:
            merged[tuple(row[:key_cols])] = row
    for row in rows:
        merged[tuple(row[:key_cols])] = row
    return sorted(merged.values())


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _write_records(root: Path, rows: list[list[str]], skipped: list[Skip], split: Sequence[float], seed: int
                   ) -> None:
    """SOURCES.csv and ATTRIBUTION.md over all imports into ``root``, the splits over all of them."""
    rows = _merge_rows(root / SOURCES_CSV, rows, 2)
    # keep only rows whose model is finished on disk (a model rebuilt elsewhere or removed drops out)
    rows = [r for r in rows if (root / r[0] / r[1] / layout.POINTS_FILE).is_file()]
    by_synset: dict[str, list[str]] = {}
    for r in rows:
        by_synset.setdefault(r[0], []).append(r[1])
    for synset, ids in by_synset.items():  # earlier imports (other sources) stay in the splits
        for name, members in assign_splits(ids, split, seed, synset).items():
            layout.write_split(root, synset, name, members)
    atomic_write_text(root / SOURCES_CSV, _csv_text(_SOURCE_COLUMNS, rows))
    skip_rows = sorted([s.source, s.key, s.name, s.category, s.reason] for s in skipped)
    atomic_write_text(root / SKIPPED_CSV, _csv_text(["source", "key", "name", "category", "reason"], skip_rows))
    atomic_write_text(root / ATTRIBUTION_MD, attribution_text(rows))


def attribution_text(rows: list[list[str]]) -> str:
    """ATTRIBUTION.md: per licence, each model with its title, author, source package and licence link."""
    lines = ["# Attribution", "",
             "The models of this dataset were imported by `recon data import` from Debian packages and",
             "converted (re-oriented, normalised, sampled, voxelised and rendered). Per the licences",
             "(CC BY 3.0 requires credit, a licence link and a note of changes; CC0 requires nothing;",
             "GPL-2+ and the Free Art License require the licence and access to the source, here the",
             "named Debian source packages), every model is listed with its author and licence.", ""]
    by_licence: dict[str, list[list[str]]] = {}
    for row in rows:
        by_licence.setdefault(row[9], []).append(row)
    for licence in sorted(by_licence):
        url = LICENCE_URLS.get(licence, "")
        lines += [f"## {licence}" + (f" ({url})" if url else ""), ""]
        for r in by_licence[licence]:
            lines.append(f"- `{r[0]}/{r[1]}` ({r[2]}): \"{r[7]}\" by {r[8]}; from {r[4]} {r[5]}, file `{r[6]}`; "
                         f"changed (converted by recon).")
        lines.append("")
    return "\n".join(lines)
