"""``recon data merge``: several ShapeNet-layout datasets seen as one (e.g. procedural + imported).

The merged root gets ``metadata.yaml`` (union of the categories; a synset named
differently in two sources keeps the first name), one entry per model (a
symbolic link to the source model folder by default, or a copy), and per
category the concatenated ``train/val/test.lst`` of the sources, so every
model keeps the split its source gave it. Provenance files (``SOURCES.csv``,
``ATTRIBUTION.md``) are not merged: ``MERGED_FROM.txt`` names the source roots,
whose own files stay authoritative. A model id present in two sources is an
error naming both, before anything is written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recon_cli.data import layout
from recon_cli.errors import InputError
from recon_cli.io.atomic import atomic_write_text


@dataclass
class MergeReport:
    out: str
    models: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, int] = field(default_factory=dict)


def merge_datasets(sources: list[Path], out: Path, *, copy: bool = False, overwrite: bool = False) -> MergeReport:
    """Merge ``sources`` into ``out`` (see the module docstring); returns counts."""
    if len(sources) < 2:
        raise InputError("give at least two datasets to merge")
    out = Path(out)
    resolved = [Path(s).resolve() for s in sources]
    for src in resolved:
        if out.resolve() == src or src in out.resolve().parents:
            raise InputError("the merged dataset cannot be written inside a source", path=out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError("exists and is not empty (pass --overwrite to replace the merge)", path=out)
    metadata: dict[str, dict] = {}
    splits: dict[tuple[str, str], list[str]] = {}
    owner: dict[tuple[str, str], Path] = {}
    for src in resolved:
        meta = layout.read_metadata(src)
        for synset, entry in meta.items():
            metadata.setdefault(synset, entry)
            for split in layout.SPLITS:
                for model in layout.read_split(src, synset, split):
                    key = (synset, model)
                    if key in owner:
                        raise InputError(f"model {synset}/{model} is in both {owner[key]} and {src}", path=src)
                    if not (src / synset / model).is_dir():
                        raise InputError(f"{split}.lst lists {model}, which has no folder", path=src / synset)
                    owner[key] = src
                    splits.setdefault((synset, split), []).append(model)
    if overwrite and out.exists():
        for synset in metadata:
            if (out / synset).exists():
                shutil.rmtree(out / synset)
    out.mkdir(parents=True, exist_ok=True)
    report = MergeReport(str(out))
    for (synset, model), src in owner.items():
        target = out / synset / model
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copytree(src / synset / model, target)
        else:
            os.symlink(src / synset / model, target, target_is_directory=True)
        report.models += 1
        report.per_source[str(src)] = report.per_source.get(str(src), 0) + 1
        name = layout.short_name(metadata[synset])
        report.per_category[name] = report.per_category.get(name, 0) + 1
    for (synset, split), models in splits.items():
        layout.write_split(out, synset, split, models)
    layout.write_metadata(out, metadata)
    atomic_write_text(out / "MERGED_FROM.txt", "".join(f"{s}\n" for s in resolved))
    return report
