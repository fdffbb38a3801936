"""Several photos per object from the command line: ``recon reconstruct --fuse / --fuse-by``.

:func:`group_inputs` decides which photos show the same object:

- no ``fuse_by``: all inputs are one object, named after the first photo's stem;
- ``fuse_by="folder"``: one object per folder (``chair/front.jpg``, ``chair/side.jpg``
  -> ``chair``);
- any other ``fuse_by`` is a regular expression searched in each file name; the
  object name is its group ``object`` when it has one, else its first group,
  else the whole match (``--fuse-by '^(.+)_\\d+'``: ``sofa_1.jpg``, ``sofa_2.jpg``
  -> ``sofa``). A file whose name does not match is reported by name.

:func:`reconstruct_groups` reconstructs each group with the Python API
(:meth:`recon_cli.api.ReconModel.reconstruct` with ``fuse=True``) and writes
the mesh atomically to ``-o`` (one group), ``<out_dir>/<object>.<fmt>``, or
beside the group's first photo; results are the same
:class:`~recon_cli.reconstruct.FileResult` records as ``recon reconstruct``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recon_cli.errors import InputError, ReconError
from recon_cli.io.inputs import IMAGE_SUFFIXES, expand_inputs, output_format
from recon_cli.reconstruct import FileResult, ReconstructReport

if TYPE_CHECKING:
    from recon_cli.api import ReconModel

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


@dataclass
class Group:
    """Photos of one object; ``error`` set when the group cannot be made (a file matched nothing)."""

    name: str
    photos: list[Path]
    error: str | None = None


def group_inputs(specs: Sequence[str | Path], *, fuse_by: str | None = None, recursive: bool = False) -> list[Group]:
    """Expand files, folders and globs and group the photos by object (see the module docstring)."""
    items = expand_inputs(specs, recursive=recursive or fuse_by == "folder", suffixes=IMAGE_SUFFIXES)
    bad = [Group(it.path.stem or str(it.path), [it.path], f"{it.path}: {it.error}") for it in items if it.error]
    paths = [it.path for it in items if not it.error]
    if not paths:
        if bad:
            return bad
        raise InputError("no input photos found (folders are searched for " + ", ".join(IMAGE_SUFFIXES) + ")")
    if fuse_by is None:
        return [Group(paths[0].stem, paths), *bad]
    groups: dict[str, list[Path]] = {}
    if fuse_by == "folder":
        for path in paths:
            groups.setdefault(path.parent.name or path.parent.absolute().name, []).append(path)
        return [Group(k, v) for k, v in groups.items()] + bad
    try:
        pattern = re.compile(fuse_by)
    except re.error as exc:
        raise InputError(f"--fuse-by: not a valid regular expression ({exc})") from exc
    for path in paths:
        match = pattern.search(path.name)
        if match is None:
            bad.append(Group(path.stem, [path], f"{path}: file name does not match --fuse-by {fuse_by!r}"))
            continue
        if "object" in pattern.groupindex:
            key = match.group("object")
        elif pattern.groups:
            key = match.group(1)
        else:
            key = match.group(0)
        if not key:
            bad.append(Group(path.stem, [path], f"{path}: --fuse-by matched an empty object name"))
            continue
        groups.setdefault(key, []).append(path)
    return [Group(k, v) for k, v in groups.items()] + bad


def plan_output(group: Group, *, output: Path | None, out_dir: Path | None, fmt: str) -> Path:
    """Where a group's mesh goes; InputError for object names that are not plain file names."""
    if output is not None:
        return output
    if not _SAFE_NAME.match(group.name) or ".." in group.name:
        raise InputError(f"object name {group.name!r} is not a plain file name (letters, digits, _ . + -)")
    folder = out_dir if out_dir is not None else group.photos[0].parent
    return folder / f"{group.name}.{fmt}"


def reconstruct_groups(
    groups: Sequence[Group], model: ReconModel, *, output: Path | None = None, out_dir: Path | None = None,
    fmt: str | None = None, fusion: str | None = None, skip_existing: bool = False, save_stages: bool = False,
    preview: bool = False, on_result: Callable[[FileResult], None] | None = None,
) -> ReconstructReport:
    """Reconstruct one mesh per group and write it; a failing group is reported and the others go on."""
    from recon_cli.io.mesh import save_mesh

    if output is not None and len(groups) > 1:
        raise InputError(f"-o names one output file but the photos form {len(groups)} objects; use --out-dir DIR")
    fmt = output_format(output, fmt)
    start = time.perf_counter()
    results: list[FileResult] = []
    for group in groups:
        begun = time.perf_counter()
        result = FileResult(", ".join(str(p) for p in group.photos), None)
        try:
            if group.error is not None:
                raise InputError(group.error)
            target = plan_output(group, output=output, out_dir=out_dir, fmt=fmt)
            if skip_existing and target.is_file() and target.stat().st_size > 0:
                result.output, result.skipped = str(target), True
            else:
                details = model.reconstruct(group.photos, fuse=True, fusion=fusion, return_details=True)
                result.warnings.extend(details.warnings)
                save_mesh(details.mesh, target, fmt=fmt)
                result.output = str(target)
                result.vertices, result.faces = len(details.mesh.vertices), len(details.mesh.faces)
                result.watertight = bool(details.mesh.is_watertight)
                if save_stages:
                    result.files.extend(_save_stages(details, target, fmt))
                if preview:
                    from recon_cli.preview import preview_path, render_mesh, save_picture

                    picture = preview_path(target, avoid=group.photos)
                    result.files.append(str(save_picture(render_mesh(details.mesh), picture)))
        except ReconError as exc:
            result.error = str(exc) if exc.path or group.error else f"{group.name}: {exc}"
            result.output = None
        except OSError as exc:
            result.error, result.output = f"{group.name}: cannot write ({exc.strerror or exc})", None
        result.seconds = round(time.perf_counter() - begun, 4)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return ReconstructReport(results, time.perf_counter() - start, model=model.stages, weights=model.weights,
                             backend="torch", device=str(model.device))


def _save_stages(details: object, target: Path, fmt: str) -> list[str]:
    import trimesh

    from recon_cli.io.atomic import atomic_write_bytes
    from recon_cli.io.mesh import save_mesh

    written = []
    stage1 = getattr(details, "stage1_mesh", None)
    points = getattr(details, "points", None)
    if stage1 is not None and len(stage1.faces):
        written.append(str(save_mesh(stage1, target.with_name(f"{target.stem}.stage1.{fmt}"), fmt=fmt)))
    if points is not None and len(points):
        path = target.with_name(f"{target.stem}.points.ply")
        data = trimesh.PointCloud(points).export(file_type="ply", encoding="binary")
        atomic_write_bytes(path, data if isinstance(data, bytes) else data.encode("utf-8"))
        written.append(str(path))
    return written
