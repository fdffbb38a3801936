"""Stage-2 fine-tuning on stage-1 predictions (phase ``finetune``): the cloud cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recon_cli.training.data import _val_subset
from recon_cli.training.distributed import _all_reduce_sum
from recon_cli.training.schedule import Phase


class FinetuneMixin:
    """``Trainer`` methods of the fine-tuning phase."""

    def _cloud(self, batch: dict[str, Any], phase: Phase) -> Tensor:
        gt = batch["inputs"]  # (B, P, 3)
        if phase.cloud == "gt" or self.cache is None:
            return gt.to(self.device, non_blocking=True)
        index = batch["index"]
        rng = np.random.default_rng([self.config.seed, self.step, 77])
        views = torch.as_tensor(rng.integers(0, self.cache["clouds"].shape[1], size=len(index)))
        keep_gt = torch.as_tensor(rng.random(len(index)) < self.config.finetune.gt_fraction)
        pred = self.cache["clouds"][index, views]  # (B, P, 3)
        ok = self.cache["valid"][index, views] & ~keep_gt  # (B,)
        cloud = torch.where(ok[:, None, None], pred, gt)
        return cloud.to(self.device, non_blocking=True)

    def _prepare_finetune(self, model: nn.Module, train_set: Any, val_set: Any, phase: Phase,
                          optimizer: torch.optim.Optimizer) -> None:
        cache_path = self.out / "finetune_cache.pt"
        ft = self.config.finetune
        if cache_path.is_file():
            data = torch.load(cache_path, map_location="cpu", weights_only=True)
            self.cache, self.val_cache = data["train"], data["val"]
        else:
            self.emit({"type": "message", "text": "caching stage-1 predictions for fine-tuning"})
            subset = _val_subset(len(val_set), self.config.data.val_max_models)
            self.cache = self._predict_clouds(model, train_set, list(range(len(train_set))), ft.views)
            self.val_cache = self._predict_clouds(model, val_set, subset, 1, first_view_only=True)
            if self.info.is_main:
                from recon_cli.io.atomic import atomic_path

                with atomic_path(cache_path) as tmp:
                    torch.save({"train": self.cache, "val": self.val_cache}, tmp)
        if self.step == phase.start and phase.name not in self.phase_best:
            base = self.evaluate(model, val_set, phase)
            self.phase_best[phase.name] = base.get("iou", 0.0)
            self.log({"step": self.step, "phase": phase.name, **{f"val/{k}": v for k, v in base.items()},
                      "note": "before fine-tuning"})
            self.emit({"type": "val", "step": self.step, "phase": phase.name, "metrics": base,
                       "best_iou": self.best_iou, "improved": False})

    @torch.no_grad()
    def _predict_clouds(self, model: nn.Module, dataset: Any, indices: list[int], views: int, *,
                        first_view_only: bool = False) -> dict[str, Tensor]:
        """Stage-1 meshes (MISE as at inference) -> ``n_input_points`` samples: clouds (M,V,P,3), valid (M,V)."""
        from recon_cli.data.shapenet import count_views, load_view
        from recon_cli.pipeline import ExtractOptions, Reconstructor, sample_input_points
        from recon_cli.runtime.torch_backend import TorchBackend

        cfg, ft = self.config, self.config.finetune
        p = cfg.model.n_input_points
        clouds = torch.zeros(len(indices), views, p, 3)
        valid = torch.zeros(len(indices), views, dtype=torch.bool)
        mine = list(range(len(indices)))[self.info.rank::self.info.world_size]
        size = cfg.model.image_encoder.image_size
        options = ExtractOptions(resolution0=ft.resolution0, upsampling_steps=ft.upsampling_steps,
                                 threshold=cfg.threshold)
        recon = Reconstructor(TorchBackend(model, device=self.device), options=options, stages="1")
        bs = max(1, cfg.data.val_batch_size // max(1, views))
        for start in range(0, len(mine), bs):
            rows = mine[start:start + bs]
            images, keys = [], []
            for r in rows:
                model_dir = _model_dir(self.root, dataset, indices[r])
                n_views = max(1, count_views(model_dir))
                for v in range(views):
                    view = 0 if first_view_only else (v * n_views) // views
                    images.append(load_view(model_dir, view, size=size))
                    keys.append((r, v))
            codes = recon.backend.encode_image(torch.stack(images).to(self.device))  # (b, c1)
            meshes, _ = recon.extract(1, codes)
            for (r, v), mesh in zip(keys, meshes):
                rng = np.random.default_rng([cfg.seed, indices[r], v, 99])
                pts = sample_input_points(mesh, p, rng)
                if len(pts) == p:
                    clouds[r, v] = torch.from_numpy(pts)
                    valid[r, v] = True
            self.emit({"type": "cache", "done": min(len(mine), start + bs), "total": len(mine)})
        if self.info.enabled:
            clouds = _all_reduce_sum(clouds, self.info, self.device)  # each row was filled by exactly one rank
            valid = _all_reduce_sum(valid.to(torch.int32), self.info, self.device) > 0
        return {"clouds": clouds, "valid": valid}



def _model_dir(root: Path, dataset: Any, index: int) -> Path:
    synset, model_id = dataset.models[index][:2]
    return root / synset / model_id

