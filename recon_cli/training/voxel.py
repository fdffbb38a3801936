"""Training of the voxel model (``model.name = r2n2``, 3D-R2N2).

The :class:`VoxelTrainer` reuses the occupancy trainer's loop, schedule,
deterministic sampler, bf16 autocast, checkpoints, resume and stop handling;
only the items, the step and the validation differ:

* an item is 1..``voxel.max_views`` views of one model in random order (each a
  cached trunk feature, or an image when the trunk trains) padded to
  ``max_views`` with a mask, and the model's ``model.binvox`` grid as the target;
* the loss is the voxel-wise binary cross-entropy (the paper's two-class
  softmax), averaged over voxels and objects;
* validation is the voxel IoU at ``threshold`` on the val subset, with 1 view
  and with ``max_views`` views (``val/iou`` is their mean, which picks ``best.pt``).

Views come from the renders the feature cache uses (``data.feature_views``
evenly spaced ones, view 0 first), in the image path too, so both see the same views.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recon_cli.data.binvox import read_binvox
from recon_cli.data.layout import BINVOX_FILE, POINTS_FILE, count_views, open_view
from recon_cli.data.shapenet import ShapeNetDataset, image_to_tensor, random_crop
from recon_cli.errors import DatasetError
from recon_cli.models.config import VoxelConfig
from recon_cli.training.data import _to, _val_subset, uses_feature_cache
from recon_cli.training.distributed import _all_reduce_sum
from recon_cli.training.loop import Trainer
from recon_cli.training.sampler import _collate
from recon_cli.training.schedule import Phase

# ---------------------------------------------------------------------------- targets


def voxel_target(model_dir: str | Path, resolution: int = 32) -> np.ndarray:
    """The (R, R, R) bool grid [x, y, z] over [-0.5, 0.5]^3 of a model's ``model.binvox``.

    Grids written by recon are in that frame already. Others (the Occupancy
    Networks' ShapeNet files keep the raw ShapeNet frame in the binvox header)
    are resampled at our voxel centres by nearest voxel, through the ``loc`` and
    ``scale`` that ``points.npz`` records (normalised = (raw - loc) / scale).
    """
    model_dir = Path(model_dir)
    path = model_dir / BINVOX_FILE
    if not path.is_file():
        raise DatasetError("missing file", path=path)
    vox, translate, scale = read_binvox(path)
    if vox.shape == (resolution,) * 3 and np.allclose(translate, -0.5) and math.isclose(scale, 1.0):
        return vox
    loc, norm_scale = np.zeros(3), 1.0
    points_file = model_dir / POINTS_FILE
    if points_file.is_file():
        with np.load(points_file, allow_pickle=False) as data:
            if "loc" in data and "scale" in data:
                loc, norm_scale = np.asarray(data["loc"], float).reshape(3), float(data["scale"])
    centres = (np.arange(resolution) + 0.5) / resolution - 0.5
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    raw = grid * norm_scale + loc
    idx = np.floor((raw - np.asarray(translate)) / scale * np.asarray(vox.shape)).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(vox.shape)), axis=1)
    out = np.zeros(len(grid), bool)
    out[inside] = vox[idx[inside, 0], idx[inside, 1], idx[inside, 2]]
    return out.reshape((resolution,) * 3)


# ------------------------------------------------------------------------------ items


class VoxelItems(torch.utils.data.Dataset):
    """Models of one split as R2N2 items (see the module docstring).

    ``mode="train"`` draws the number of views, the views and (with ``augment``)
    the variants / crops from torch's generator; :meth:`item` gives fixed views
    (validation). Models without a readable voxel grid are skipped with a record
    in ``skipped``.
    """

    def __init__(self, root: str | Path, split: str, *, voxel: VoxelConfig, image_size: int, views_per_model: int,
                 categories: list[str] | None = None, mode: str = "train", augment: bool = False) -> None:
        reader = ShapeNetDataset(root, split, categories=categories, with_points=False, with_pointcloud=False)
        self.root, self.split, self.mode, self.augment = Path(root), split, mode, augment
        self.max_views, self.image_size, self.views_per_model = voxel.max_views, image_size, views_per_model
        self.skipped = list(reader.skipped)
        self.models: list[tuple[str, str]] = []
        targets = []
        for synset, model in reader.models:
            try:
                targets.append(torch.from_numpy(voxel_target(self.root / synset / model, voxel.resolution)))
            except DatasetError as exc:
                self.skipped.append((synset, model, str(exc)))
                continue
            self.models.append((synset, model))
        r = voxel.resolution
        self.targets = torch.stack(targets) if targets else torch.zeros(0, r, r, r, dtype=torch.bool)
        self.features: Tensor | None = None  # (M, V, K, D) float16 when cached
        self.counts: Tensor | None = None

    def __len__(self) -> int:
        return len(self.models)

    def keep(self, indices: list[int]) -> None:
        """Keep only the models at ``indices`` (the val subset)."""
        self.models = [self.models[i] for i in indices]
        self.targets = self.targets[indices]

    def attach_features(self, features: Tensor, counts: Tensor) -> None:
        """Read views from the feature cache (:func:`recon_cli.training.features.load_feature_cache`)."""
        self.features, self.counts = features, counts

    def render_ids(self, index: int) -> list[int]:
        """The renders of model ``index`` that items use, in order (as the feature cache holds them)."""
        from recon_cli.training.features import cached_views

        synset, model = self.models[index]
        n = count_views(self.root / synset / model)
        if n == 0:
            raise DatasetError("no renders", path=self.root / synset / model)
        return cached_views(n, self.views_per_model)

    def n_views(self, index: int) -> int:
        """How many views items of model ``index`` choose from."""
        return int(self.counts[index]) if self.counts is not None else len(self.render_ids(index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        available = self.n_views(index)
        k = int(torch.randint(1, min(self.max_views, available) + 1, (1,)))
        order = torch.randperm(available)[:k].tolist()
        return self.item(index, order, random_variants=self.augment)

    def item(self, index: int, views: list[int], *, random_variants: bool = False) -> dict[str, Any]:
        """Views ``views`` (positions among :meth:`n_views`) of model ``index``, padded to ``max_views``."""
        synset, model = self.models[index]
        if self.features is not None:
            variants = self.features.shape[2]
            rows = [self.features[index, v, int(torch.randint(0, variants, (1,))) if random_variants else 0]
                    for v in views]
            data = torch.zeros(self.max_views, self.features.shape[-1])
            data[: len(rows)] = torch.stack(rows).float()
        else:
            renders = self.render_ids(index)
            data = torch.ones(self.max_views, 3, self.image_size, self.image_size)
            for slot, v in enumerate(views):
                image = open_view(self.root / synset / model, renders[v])
                if random_variants:
                    seed = int(torch.randint(0, 2**31 - 1, (1,)))
                    image = random_crop(image, np.random.default_rng(seed))
                data[slot] = image_to_tensor(image, self.image_size)
        mask = torch.zeros(self.max_views, dtype=torch.bool)
        mask[: len(views)] = True
        return {"index": index, "synset": synset, "model": model, "views": data, "mask": mask,
                "voxels": self.targets[index].float()}


# ------------------------------------------------------------------------ the network


def voxel_loss(logits: Tensor, voxels: Tensor) -> Tensor:
    """Voxel-wise BCE with logits, mean over voxels and objects. (B,R,R,R),(B,R,R,R) -> ()."""
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), voxels.float())


class VoxelTrainNet(nn.Module):
    """One training step's network: views (B, V, D) features or (B, V, 3, S, S) images -> loss (1,)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, views: Tensor, mask: Tensor, voxels: Tensor) -> Tensor:
        """-> losses (1,)."""
        return voxel_loss(voxel_logits(self.model, views, mask), voxels).view(1)


def voxel_logits(model: nn.Module, views: Tensor, mask: Tensor) -> Tensor:
    """An R2N2's logits (B, R, R, R) for cached features (B, V, D) or images (B, V, 3, S, S), mask (B, V)."""
    codes = model.project(views) if views.dim() == 3 else model.encode(views)  # (B, V, c)
    return model.decode(model.fuse(codes, mask))


# ------------------------------------------------------------------------ the trainer


class VoxelTrainer(Trainer):
    """:class:`~recon_cli.training.loop.Trainer` for the voxel model (see the module docstring)."""

    def image_encoder(self, model: nn.Module) -> nn.Module:
        return model.encoder

    def datasets(self, model: nn.Module) -> tuple[Any, Any]:
        cfg = self.config
        d, m = cfg.data, cfg.model
        kwargs = dict(voxel=m.voxel, image_size=m.image_encoder.image_size, views_per_model=d.feature_views,
                      categories=list(d.categories) if d.categories else None)
        train_set = VoxelItems(self.root, d.train_split, mode="train", augment=d.augment, **kwargs)
        val_set = VoxelItems(self.root, d.val_split, mode="eval", **kwargs)
        val_set.keep(_val_subset(len(val_set), d.val_max_models))
        for ds in (train_set, val_set):
            for synset, model_id, reason in ds.skipped:
                self.emit({"type": "warning", "text": f"{ds.split}: skipping {synset}/{model_id}: {reason}"})
        if uses_feature_cache(cfg, tail=False):
            from recon_cli.training.features import build_feature_cache, config_spec, load_feature_cache

            spec = config_spec(model.encoder, cfg)
            for ds in (train_set, val_set):
                self.emit({"type": "message", "text": f"feature cache: {len(ds)} {ds.split} models"})
                folder = build_feature_cache(
                    self.root, ds.models, model.encoder, spec, base=d.feature_cache_dir or None,
                    on_progress=lambda done, total, s=ds.split: self.emit(
                        {"type": "cache", "what": f"{s} features", "done": done, "total": total}))
                ds.attach_features(*load_feature_cache(folder, ds.models))
        return train_set, val_set

    def _trainable(self, phase: Phase, model: nn.Module) -> list[nn.Parameter]:
        return list(model.parameters())

    def _step_net(self, phase: Phase, model: nn.Module) -> nn.Module:
        return VoxelTrainNet(model)

    def _step_inputs(self, batch: dict[str, Any], phase: Phase) -> tuple[Tensor | None, ...]:
        return tuple(_to(batch, k, self.device) for k in ("views", "mask", "voxels"))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, val_set: Any, phase: Phase) -> dict[str, float]:
        """Voxel IoU at ``threshold`` with 1 view and with ``max_views`` views (float32)."""
        cfg = self.config
        model.eval()
        mine = list(range(len(val_set)))[self.info.rank::self.info.world_size]
        if not len(val_set):
            return {}
        thr = math.log(cfg.threshold / (1 - cfg.threshold))
        counts = sorted({1, cfg.model.voxel.max_views})
        sums = torch.zeros(len(counts) + 1, dtype=torch.float64)
        bs = cfg.data.val_batch_size
        for start in range(0, len(mine), bs):
            idx = mine[start:start + bs]
            for col, k in enumerate(counts):
                batch = _collate([val_set.item(i, list(range(min(k, val_set.n_views(i))))) for i in idx])
                views, mask = _to(batch, "views", self.device), _to(batch, "mask", self.device)
                logits = voxel_logits(model, views, mask).float()
                sums[col] += voxel_iou(logits, batch["voxels"].to(self.device), thr).double().sum().cpu()
            sums[-1] += len(idx)
        sums = _all_reduce_sum(sums, self.info, self.device)
        count = max(1.0, float(sums[-1]))
        metrics = {f"iou_{k}view": float(sums[c] / count) for c, k in enumerate(counts)}
        metrics["iou"] = float(sum(metrics.values()) / len(metrics))
        return metrics


def voxel_iou(logits: Tensor, voxels: Tensor, threshold_logit: float) -> Tensor:
    """Per-object IoU of ``logits > threshold_logit`` against ``voxels >= 0.5``. (B,R,R,R) x2 -> (B,)."""
    from recon_cli.training.validate import iou_per_object

    return iou_per_object(logits.flatten(1), voxels.flatten(1), threshold_logit)
