"""Validation: per-object IoU of each stage on the val subset (float32, no autocast)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from recon_cli.training.data import _to, _val_subset
from recon_cli.training.distributed import _all_reduce_sum
from recon_cli.training.sampler import SeededItems, _collate, item_seed
from recon_cli.training.schedule import Phase


class ValidationMixin:
    """``Trainer`` methods that validate and keep ``best.pt``."""

    def _validate(self, model: nn.Module, val_set: Any, phase: Phase, optimizer: torch.optim.Optimizer) -> None:
        metrics = self.evaluate(model, val_set, phase)
        self.last_val = metrics
        score = metrics.get("iou")
        improved = False
        if score is not None:
            best_phase = self.phase_best.get(phase.name)
            if best_phase is None or score > best_phase:
                self.phase_best[phase.name] = score
                self.best_iou, self.best_step = score, self.step
                improved = True
        self.log({"step": self.step, "phase": phase.name, **{f"val/{k}": v for k, v in metrics.items()},
                  "best_iou": self.best_iou})
        self.emit({"type": "val", "step": self.step, "phase": phase.name, "metrics": metrics,
                   "best_iou": self.best_iou, "improved": improved})
        self.save("last.pt", model, optimizer, phase)
        if improved:
            self.save("best.pt", model, None, phase)  # weights only: small, for reconstruct/eval

    @torch.no_grad()
    def evaluate(self, model: nn.Module, val_set: Any, phase: Phase) -> dict[str, float]:
        """Mean per-object IoU of each stage on the val subset (and the chain when fine-tuning)."""
        cfg = self.config
        model.eval()
        subset = _val_subset(len(val_set), cfg.data.val_max_models)
        mine = subset[self.info.rank::self.info.world_size]
        if not subset:
            return {}
        thr = math.log(cfg.threshold / (1 - cfg.threshold))
        names = [f"iou{s}" for s in (1, 2) if s in self.phases[0].stages]
        chain = phase.cloud == "pred" and self.val_cache is not None
        if chain:
            names.append("iou_chain")
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        bs = cfg.data.val_batch_size
        for start in range(0, len(mine), bs):
            idx = mine[start:start + bs]
            batch = _collate([SeededItems(val_set)[(i, item_seed(cfg.seed, -1 % 2**31, i))] for i in idx])
            points, occ = _to(batch, "points", self.device), _to(batch, "occ", self.device)
            col = 0
            for name in names:
                if name == "iou1":
                    logits = self._decode_chunked(model.stage(1), points, _to(batch, "image", self.device))
                elif name == "iou2":
                    logits = self._decode_chunked(model.stage(2), points, _to(batch, "inputs", self.device))
                else:
                    vi = torch.as_tensor([subset.index(i) for i in idx])
                    cloud = torch.where(self.val_cache["valid"][vi, 0][:, None, None], self.val_cache["clouds"][vi, 0],
                                        batch["inputs"]).to(self.device)
                    logits = self._decode_chunked(model.stage(2), points, cloud)
                sums[col] += iou_per_object(logits, occ, thr).double().sum().cpu()
                col += 1
            sums[-1] += len(idx)
        sums = _all_reduce_sum(sums, self.info, self.device)
        count = max(1.0, float(sums[-1]))
        metrics = {name: float(sums[i] / count) for i, name in enumerate(names)}
        if phase.cloud == "pred" and "iou_chain" in metrics:
            metrics["iou"] = metrics["iou_chain"]
        elif names:
            base = [metrics[n] for n in names if n in ("iou1", "iou2")]
            metrics["iou"] = float(sum(base) / len(base))
        return metrics

    @staticmethod
    def _decode_chunked(stage_model: nn.Module, points: Tensor, inputs: Tensor, chunk: int = 32768) -> Tensor:
        """Validation logits in float32 (no autocast: the eval path is cheap and exact). -> (B, N)"""
        c = stage_model.encode(inputs)
        outs = [stage_model.decode(points[:, i:i + chunk], c).float() for i in range(0, points.shape[1], chunk)]
        return torch.cat(outs, dim=1)


def iou_per_object(logits: Tensor, occ: Tensor, threshold_logit: float) -> Tensor:
    """IoU of ``logits > threshold_logit`` against ``occ >= 0.5``, per object. (B,N),(B,N) -> (B,)"""
    pred = logits > threshold_logit
    gt = occ >= 0.5
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))

