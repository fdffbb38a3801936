"""Datasets and loaders of a training run (preloaded variant, val subset, workers)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recon_cli.data.shapenet import ShapeNetDataset, load_occupancy, load_pointcloud
from recon_cli.errors import DatasetError
from recon_cli.training.config import TrainConfig
from recon_cli.training.distributed import DistInfo
from recon_cli.training.sampler import _collate

# ------------------------------------------------------------------------------ data


def _make_dataset(config: TrainConfig, root: Path, split: str, *, train: bool) -> Any:
    m, d = config.model, config.data
    cls = preloaded_dataset_class() if d.preload else _shapenet_class()
    return cls(
        root, split,
        categories=list(d.categories) if d.categories else None,
        mode="train" if train else "eval",
        n_points=d.n_points if train else d.val_n_points,
        n_input_points=m.n_input_points,
        input_noise=d.input_noise,
        image_size=m.image_encoder.image_size,
        with_image=m.has_stage1 and not (train and uses_feature_cache(config)),
        with_pointcloud=m.has_stage2,
        augment=d.augment and train,
        seed=config.seed,
    )


def uses_feature_cache(config: TrainConfig, *, tail: bool = True) -> bool:
    """Whether training reads cached image features: stage 1, the cache on, and a frozen trunk,
    or (``tail``) a trunk whose last ``trainable_blocks`` units train on cached activations."""
    enc = config.model.image_encoder
    frozen = enc.trainable_blocks >= 0 if tail else enc.trainable_blocks == 0
    return config.model.has_image_encoder and frozen and config.data.feature_cache


def wrap_training_items(config: TrainConfig, root: Path, dataset: Any, model: nn.Module,
                        emit: Callable[[dict[str, Any]], None]) -> Any:
    """The training reader with cached image features and/or near-surface query points.

    Builds the missing cache files first (under DDP every rank encodes the files
    still missing; each file is written atomically, so concurrent writers are safe).
    """
    d = config.data

    def progress(what: str) -> Callable[[int, int], None]:
        return lambda done, total: emit({"type": "cache", "what": what, "done": done, "total": total})

    if uses_feature_cache(config):
        from recon_cli.training.features import (
            CachedFeatureItems, append_views, build_feature_cache, camera_spec, config_spec, load_feature_cache,
        )

        encoder = model.stage(1).encoder
        spec = config_spec(encoder, config)
        emit({"type": "message", "text": f"feature cache: {len(dataset.models)} training models"})
        folder = build_feature_cache(root, dataset.models, encoder, spec, base=d.feature_cache_dir or None,
                                     on_progress=progress("features"))
        features, counts = load_feature_cache(folder, dataset.models)
        if d.feature_camera_views:
            cspec = camera_spec(spec, d.feature_camera_views, d.feature_camera_synth_seed)
            emit({"type": "message", "text": f"camera views: {d.feature_camera_views} per procedural model"})
            cfolder = build_feature_cache(root, dataset.models, encoder, cspec, base=d.feature_cache_dir or None,
                                          on_progress=progress("camera views"))
            features, counts = append_views(features, counts, cfolder, dataset.models)
        dataset = CachedFeatureItems(dataset, features, counts, augment=d.augment)
    if d.near_surface_share > 0:
        from recon_cli.training.near_surface import MIN_AGREEMENT, NearSurfaceItems, build_near_surface

        points, labels, agreement = build_near_surface(
            root, dataset.models, count=d.near_surface_points, sigma=d.near_surface_sigma, seed=config.seed,
            on_progress=progress("near-surface points"))
        low = sum(a < MIN_AGREEMENT for a in agreement)
        emit({"type": "message", "text": f"near-surface points: mean label agreement {np.mean(agreement):.3f}"
              + (f", {low} models below {MIN_AGREEMENT} keep uniform points only" if low else "")})
        dataset = NearSurfaceItems(dataset, points, labels, d.near_surface_share)
    return dataset


def _shapenet_class() -> type:
    return ShapeNetDataset


def preloaded_dataset_class() -> type:
    """The reader variant that keeps the npz arrays in memory (``data.preload``)."""
    return PreloadedShapeNetDataset


class PreloadedShapeNetDataset(ShapeNetDataset):
    """A ShapeNetDataset that reads every model's npz arrays once into memory.

    Points stay float16 as stored (about 1.3 MB per model); DataLoader workers
    started by fork share them. Items are identical to the reader's own (same
    random draws in the same order); only the per-item file reads are gone.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrays: list[tuple[Any, ...] | DatasetError] = []
        for index in range(len(self.models)):
            model_dir = self.model_dir(index)
            try:
                occ = load_occupancy(model_dir) if self.with_points else (None, None)
                surface = load_pointcloud(model_dir)[0] if self.with_pointcloud else None
                self._arrays.append((_f16(occ[0]), occ[1], _f16(surface)))
            except DatasetError as exc:
                self._arrays.append(exc)

    def _load(self, index: int) -> dict[str, Any]:
        arrays = self._arrays[index]
        if isinstance(arrays, DatasetError):
            raise arrays
        points, occ, surface = arrays
        synset, model = self.models[index]
        rng = self._rng(index)
        item: dict[str, Any] = {"index": index, "synset": synset, "model": model}
        if self.with_image:
            item["image"] = self._image(self.model_dir(index), rng)
        if self.with_points:
            if self.n_points > 0:
                pick = rng.integers(0, len(points), self.n_points)
                points, occ = points[pick], occ[pick]
            item["points"] = torch.from_numpy(points.astype(np.float32))
            item["occ"] = torch.from_numpy(occ.astype(np.float32))
        if self.with_pointcloud:
            n = self.n_input_points
            pick = rng.choice(len(surface), n, replace=len(surface) < n)
            noisy = surface[pick].astype(np.float32) + rng.normal(0.0, self.input_noise, (n, 3)).astype(np.float32)
            item["inputs"] = torch.from_numpy(noisy)
        return item


def _f16(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else array.astype(np.float16)


def _val_subset(n: int, cap: int) -> list[int]:
    if cap == 0 or n <= cap:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, cap).round()})


def _workers(config: TrainConfig, device: torch.device, info: DistInfo) -> int:
    if config.data.workers >= 0:
        return config.data.workers
    if device.type != "cuda":
        return 0
    per_rank = max(1, (os.cpu_count() or 2) // max(1, torch.cuda.device_count()))
    return max(0, min(12, per_rank - 1))


def _loader(dataset: Any, sampler: torch.utils.data.Sampler, workers: int, device: torch.device,
            config: TrainConfig, *, persistent: bool) -> torch.utils.data.DataLoader:
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(prefetch_factor=config.data.prefetch_factor, persistent_workers=persistent)
    if workers > 0:
        kwargs["worker_init_fn"] = _worker_init
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=_collate,
        pin_memory=config.data.pin_memory and device.type == "cuda", **kwargs,
    )


def _worker_init(worker_id: int) -> None:
    """Loader workers ignore Ctrl-C/SIGTERM sent to the whole process group: the main
    process finishes the step, saves last.pt and shuts them down itself."""
    del worker_id
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _to(batch: dict[str, Any], key: str, device: torch.device) -> Tensor | None:
    value = batch.get(key)
    if value is None:
        return None
    return value.to(device, non_blocking=True)

