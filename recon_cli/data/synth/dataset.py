"""Procedural datasets: jobs for the dataset builder and ``synth_dataset``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recon_cli.data.categories import LONG_NAMES, SYNSETS, resolve_category
from recon_cli.data.synth.generate import generate
from recon_cli.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from recon_cli.data.build import BuildReport, ModelJob, ModelResult


def model_seed(seed: int, synset: str, index: int) -> int:
    """Generator seed of model ``index`` of ``synset`` in a dataset drawn with ``seed``."""
    mixed = np.random.SeedSequence([int(seed), int(synset), int(index)]).generate_state(1)[0]
    return int(mixed) & 0x7FFFFFFF


def synth_jobs(per_category: int, categories: Sequence[str] | None = None, seed: int = 0) -> list[ModelJob]:
    """Builder jobs for ``per_category`` procedural models of each category (all 13 when None).

    Model ids are stable: ``synth_<name>_<index:05d>``; the model's generator seed depends
    on (seed, synset, index) only, so adding categories or models never changes the others.
    """
    from recon_cli.data.build import ModelJob

    if per_category < 1:
        raise InputError(f"--per-category must be at least 1, got {per_category}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    synsets = list(SYNSETS) if not categories else list(dict.fromkeys(resolve_category(c) for c in categories))
    jobs = []
    for synset in synsets:
        name = SYNSETS[synset]
        for i in range(per_category):
            s = model_seed(seed, synset, i)
            jobs.append(ModelJob(synset=synset, model_id=f"synth_{name}_{i:05d}",
                                 source=functools.partial(generate, name, s), seed=s))
    return jobs


def synth_dataset(root: str | Path, *, per_category: int, categories: Sequence[str] | None = None,
                  seed: int = 0, workers: int = 1, overwrite: bool = False,
                  on_progress: Callable[[ModelResult], None] | None = None, **build_options) -> BuildReport:
    """Write a complete procedural dataset (all files, splits, metadata) under ``root``.

    ``build_options`` are passed to ``recon_cli.data.build.write_dataset`` (e.g. ``render``).
    """
    from recon_cli.data.build import write_dataset

    jobs = synth_jobs(per_category, categories, seed)
    names = {synset: LONG_NAMES[synset] for synset in dict.fromkeys(job.synset for job in jobs)}
    return write_dataset(Path(root), jobs, names=names, seed=seed, workers=workers, overwrite=overwrite,
                         on_progress=on_progress, **build_options)
