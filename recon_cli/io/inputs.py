"""Input expansion and output planning for batch commands.

Inputs are files, folders (their images; subfolders too with ``recursive``)
and glob patterns (``*``, ``?``, ``[...]``; ``**`` with ``recursive``).
Explicit files are taken whatever their suffix (a non-image then fails by
name); files found in folders or by globs must have an image suffix, and
hidden files are skipped. Duplicates (same resolved path) are dropped.

Outputs go to ``-o`` (one input), to ``--out-dir`` with subfolders mirrored
relative to the inputs' common root, or, with neither, next to each input.
Two inputs that would map onto the same output (``a.png`` and ``a.jpg``)
both get their input suffix in the name (``a_png.obj``, ``a_jpg.obj``).
A planned output whose resolved path leaves the output folder (through a
symlinked subfolder, for instance) is refused.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from recon_cli.errors import InputError
from recon_cli.io.mesh import EXPORTERS, SUFFIX_FORMATS

#: Suffixes picked up from folders and globs (lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: Suffixes of point clouds accepted by ``--points``.
POINT_SUFFIXES: tuple[str, ...] = (".ply", ".xyz", ".txt", ".npy", ".npz", ".obj", ".off")

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One expanded input. ``error`` is set for an input that names nothing usable."""

    path: Path
    error: str | None = None


@dataclass(frozen=True)
class Job:
    """One input and the mesh file it produces. ``error``: refused before any work."""

    input: Path
    output: Path
    fmt: str
    error: str | None = None

    def sidecar(self, tag: str, suffix: str) -> Path:
        """A file next to the output: ``<stem>.<tag><suffix>`` (e.g. chair.stage1.obj)."""
        return self.output.with_name(f"{self.output.stem}.{tag}{suffix}")


def has_glob(text: str) -> bool:
    """True when ``text`` contains glob characters."""
    return any(ch in _GLOB_CHARS for ch in text)


def expand_inputs(
    specs: Sequence[str | Path], *, recursive: bool = False, suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[InputItem]:
    """Files, folders and globs -> input items in a stable order (folders sorted).

    A missing path or a pattern matching nothing becomes an item with ``error``
    set, so the batch can report it by name and go on.
    """
    items: list[InputItem] = []
    seen: set[Path] = set()
    wanted = tuple(s.lower() for s in suffixes)

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            items.append(InputItem(path))

    for spec in specs:
        text = str(spec)
        path = Path(text).expanduser()
        if path.is_dir():
            for found in _scan_folder(path, recursive=recursive, suffixes=wanted):
                add(found)
        elif path.exists():
            add(path)
        elif has_glob(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=recursive))
            files = [Path(m) for m in matches if Path(m).is_file() and _wanted(Path(m), wanted)]
            for folder in (Path(m) for m in matches if Path(m).is_dir()):
                files.extend(_scan_folder(folder, recursive=recursive, suffixes=wanted))
            if not files:
                items.append(InputItem(path, "no files match this pattern"))
            for found in files:
                add(found)
        else:
            items.append(InputItem(path, "no such file or folder"))
    return items


def _wanted(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.suffix.lower() in suffixes and not path.name.startswith(".")


def _scan_folder(folder: Path, *, recursive: bool, suffixes: tuple[str, ...]) -> list[Path]:
    if not recursive:
        return sorted(p for p in folder.iterdir() if p.is_file() and _wanted(p, suffixes))
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if _wanted(Path(dirpath) / f, suffixes))
    return found


def common_root(paths: Iterable[Path]) -> Path:
    """The deepest folder holding all ``paths`` (absolute)."""
    parents = [str(p.absolute().parent) for p in paths]
    if not parents:
        return Path.cwd()
    return Path(os.path.commonpath(parents))


def output_format(output: Path | None, fmt: str | None) -> str:
    """The mesh format: ``--format``, else the suffix of ``-o``, else obj; InputError on conflicts."""
    if fmt is not None:
        key = fmt.lower().lstrip(".")
        if key not in SUFFIX_FORMATS.values():
            raise InputError(f"unknown mesh format {fmt!r}; valid: {', '.join(sorted(set(SUFFIX_FORMATS.values())))}")
    if output is None or not output.suffix:
        return fmt.lower().lstrip(".") if fmt else "obj"
    suffix = output.suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        if fmt:
            return fmt.lower().lstrip(".")
        valid = ", ".join(SUFFIX_FORMATS)
        raise InputError(f"cannot tell the mesh format from suffix {suffix!r}; use one of {valid} or --format", path=output)
    if fmt and SUFFIX_FORMATS[suffix] != fmt.lower().lstrip("."):
        raise InputError(f"--format {fmt} conflicts with the output suffix {suffix}", path=output)
    return SUFFIX_FORMATS[suffix]


def plan_jobs(
    inputs: Sequence[Path],
    *,
    output: Path | None = None,
    out_dir: Path | None = None,
    fmt: str | None = None,
) -> list[Job]:
    """Decide each input's output path (see the module docstring)."""
    if output is not None and out_dir is not None:
        raise InputError("give either an output file (-o) or an output folder (--out-dir), not both")
    if output is not None and len(inputs) > 1:
        raise InputError(f"-o names one output but there are {len(inputs)} inputs; use --out-dir")
    kind = output_format(output, fmt)
    assert kind in EXPORTERS
    ext = "." + kind
    if output is not None:
        target = output if output.suffix else output.with_suffix(ext)
        return [Job(Path(inputs[0]), target, kind)] if inputs else []
    root = common_root(inputs)
    names = [_relative_target(Path(p), root, out_dir, ext) for p in inputs]
    clashes = _clashing(names)
    jobs = []
    for path, target in zip(inputs, names):
        path = Path(path)
        if target in clashes:
            target = target.with_name(f"{path.stem}_{path.suffix.lstrip('.').lower() or 'noext'}{ext}")
        folder = out_dir if out_dir is not None else path.parent
        jobs.append(Job(path, target, kind, _escape_error(target, folder)))
    return jobs


def _relative_target(path: Path, root: Path, out_dir: Path | None, ext: str) -> Path:
    if out_dir is None:
        return path.with_name(path.stem + ext)
    relative = path.absolute().parent.relative_to(root)
    return out_dir / relative / (path.stem + ext)


def _clashing(targets: Sequence[Path]) -> set[Path]:
    counts: dict[Path, int] = {}
    for t in targets:
        key = Path(os.path.normcase(t.absolute()))
        counts[key] = counts.get(key, 0) + 1
    return {t for t in targets if counts[Path(os.path.normcase(t.absolute()))] > 1}


def _escape_error(target: Path, folder: Path) -> str | None:
    """An error message when ``target`` resolves outside ``folder`` (symlinks, ``..``)."""
    try:
        inside = target.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # symlink loops
        inside = False
    return None if inside else f"output path {target} leaves the output folder {folder}; refused"


def within(path: Path, folder: Path) -> bool:
    """True when ``path`` resolves inside ``folder``."""
    return _escape_error(path, folder) is None
