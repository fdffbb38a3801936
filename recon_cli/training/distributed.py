"""DistributedDataParallel plumbing: process group, device choice, all-reduce."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from recon_cli.errors import ConfigError

# ------------------------------------------------------------------------ distributed


@dataclass(frozen=True)
class DistInfo:
    """Process-group facts (world_size 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, created=True)


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``auto`` -> cuda (this rank's GPU) when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA GPU is available")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(torch.device(name))
    elif name != "cpu":
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def _all_reduce_sum(values: Tensor, info: DistInfo, device: torch.device | None = None) -> Tensor:
    """Sum over ranks (on ``device`` for NCCL); returns a tensor on ``values``' device."""
    if not info.enabled:
        return values
    import torch.distributed as dist

    work = values.to(device) if device is not None else values
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(values.device)

