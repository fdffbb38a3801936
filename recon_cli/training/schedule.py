"""Training phases (joint / main / fine-tune) and the learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from recon_cli.training.config import TrainConfig

# --------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class Phase:
    """A span of global steps training some stages on some stage-2 inputs."""

    name: str  # "main" | "joint" | "finetune"
    start: int
    stop: int
    stages: tuple[int, ...]
    lr: float
    cloud: Literal["gt", "pred"] = "gt"


def plan_phases(config: TrainConfig) -> list[Phase]:
    """The phases of a run, in order."""
    m = config.model
    stages = (1,) if m.is_voxel else tuple(s for s, has in ((1, m.has_stage1), (2, m.has_stage2)) if has)
    first = Phase("joint" if len(stages) == 2 else "main", 0, config.steps, stages, config.optim.lr)
    phases = [first]
    if config.finetune_stage2_on_stage1:
        lr = config.finetune.lr if config.finetune.lr is not None else config.optim.lr
        phases.append(Phase("finetune", config.steps, config.total_steps, (2,), lr, "pred"))
    return phases


def lr_at(config: TrainConfig, phase: Phase, step: int) -> float:
    """Learning rate of global ``step`` (warm-up then constant or cosine, per phase)."""
    o = config.optim
    local = step - phase.start
    length = max(1, phase.stop - phase.start)
    if o.warmup_steps and local < o.warmup_steps:
        return phase.lr * (local + 1) / o.warmup_steps
    if o.schedule == "constant":
        return phase.lr
    t = min(1.0, (local - o.warmup_steps) / max(1, length - o.warmup_steps))
    return phase.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

