"""Training library: typed config, deterministic sampler, loop, validation, checkpoints, DDP.

Entry point: :func:`train`. The CLI (``recon train``) only resolves the config
(:func:`resolve_config`) and renders the events that :func:`train` reports
through ``on_event``.

Design choices (documented in the README too):

* Loss: binary cross-entropy with logits on the occupancy query points,
  **summed over the points and averaged over the batch**, as OccNet does.
* ``doccnet`` trains its two stages **jointly**: every step computes both
  losses on the same batch (stage 1 from the image, stage 2 from the noisy
  ground-truth surface cloud ``inputs``) and takes one Adam step on their sum.
  The stages share no parameters, so this equals training them separately with
  the same batches, at the cost of one data pass instead of two.
* Optional third phase ``finetune_stage2_on_stage1`` (beyond the paper): stage 1
  is frozen, each training shape gets ``finetune.views`` stage-1 predictions
  (MISE + marching cubes at the probability ``threshold`` on the
  ``finetune.resolution0``/``upsampling_steps`` lattice, then ``n_input_points``
  surface samples, exactly as at inference), cached
  in ``out_dir/finetune_cache.pt``, and stage 2 trains on those clouds.
* Deterministic data order: the global batch of step ``s`` is a slice of the
  concatenated per-epoch permutations seeded by ``(seed, epoch)``; each item's
  random choices (view, augmentation, point subsample, noise) are seeded by
  ``(seed, step, slot)``. Resuming at step ``s`` therefore sees exactly the
  batches an uninterrupted run would; no DataLoader shuffle state is involved.
  Under DDP, rank ``r`` of ``W`` takes slots ``r, r+W, ...`` of the global batch
  (``optim.batch_size`` is the global batch size and must divide by ``W``).
* Validation: IoU on ``data.val_n_points`` occupancy points per val object
  (``logit > logit(threshold)`` vs labels), mean over objects. ``best.pt`` is
  chosen by ``val/iou``: stage-1 IoU for ``onet``, stage-2 IoU for ``onet-pcl``,
  the mean of both for ``doccnet``'s joint phase, and stage 2 on stage-1
  predicted clouds (the full chain) in the fine-tuning phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from recon_cli.config import deep_merge, from_dict, load_yaml, parse_override, to_dict
from recon_cli.data.shapenet import ShapeNetDataset, load_occupancy, load_pointcloud
from recon_cli.errors import CheckpointError, ConfigError, DatasetError, ReconError
from recon_cli.models.config import MODEL_NAMES, ModelConfig, default_model_config

#: Built-in configs shipped in ``recon_cli/configs`` (``<name>.yaml``).
BUILTIN_CONFIGS: tuple[str, ...] = ("onet", "onet-pcl", "doccnet", "doccnet-cpu")

EventFn = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DataConfig:
    """What the loader feeds the model."""

    categories: tuple[str, ...] | None = None  # synsets or names; None = all in metadata
    train_split: str = "train"
    val_split: str = "val"
    n_points: int = 2048  # occupancy query points per shape and step
    input_noise: float = 0.005  # std of the noise on stage-2 input points
    augment: bool = True  # random scale 0.75-1 + random crop of the image
    workers: int = -1  # DataLoader workers; -1 = auto (0 on CPU, up to 8 per GPU)
    pin_memory: bool = True  # only used on CUDA
    prefetch_factor: int = 4
    preload: bool = False  # read every model's npz files into memory once
    val_max_models: int = 256  # evenly spaced subset of the val split (0 = all)
    val_n_points: int = 8192  # occupancy points per val object (0 = all 100k)
    val_batch_size: int = 32

    def __post_init__(self) -> None:
        _positive(("n_points", self.n_points), ("val_batch_size", self.val_batch_size),
                  ("prefetch_factor", self.prefetch_factor))
        if self.input_noise < 0:
            raise ValueError(f"data.input_noise must be >= 0, got {self.input_noise}")
        if self.val_max_models < 0 or self.val_n_points < 0:
            raise ValueError("data.val_max_models and data.val_n_points must be >= 0")


@dataclass(frozen=True)
class OptimConfig:
    """Adam and the learning-rate schedule."""

    lr: float = 1e-4
    batch_size: int = 64  # global batch (split over DDP ranks)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05  # cosine floor, as a share of lr
    grad_clip: float | None = None  # max global grad norm; None = off

    def __post_init__(self) -> None:
        _positive(("batch_size", self.batch_size))
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Phase 3 (beyond the paper): stage 2 on clouds sampled from stage-1 predictions."""

    steps: int = 20_000
    lr: float | None = None  # None = optim.lr
    views: int = 2  # stage-1 predictions cached per training shape (evenly spaced views)
    resolution0: int = 32  # MISE start resolution of the stage-1 meshes (as at inference)
    upsampling_steps: int = 1  # MISE steps: 1 = the "draft" 65^3 lattice
    gt_fraction: float = 0.0  # share of each batch that keeps the ground-truth cloud

    def __post_init__(self) -> None:
        _positive(("finetune.steps", self.steps), ("finetune.views", self.views),
                  ("finetune.resolution0", self.resolution0))
        if not 0 <= self.upsampling_steps <= 5:
            raise ValueError(f"finetune.upsampling_steps must be in 0..5, got {self.upsampling_steps}")
        if not 0.0 <= self.gt_fraction <= 1.0:
            raise ValueError(f"finetune.gt_fraction must be in [0, 1], got {self.gt_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs (``recon train --dry-run`` prints it)."""

    model: ModelConfig = field(default_factory=lambda: default_model_config("doccnet"))
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    steps: int = 300_000  # optimiser steps of the main phase
    val_every: int = 2000
    checkpoint_every: int = 1000  # last.pt (also written at every validation and at the end)
    log_every: int = 50
    threshold: float = 0.2  # occupancy probability for IoU and the stage-1 surface
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on CUDA
    compile: bool = False  # torch.compile the training step's network
    threads: int = 0  # torch intra-op CPU threads; 0 = torch's default (1 is much faster on a busy machine)
    finetune_stage2_on_stage1: bool = False
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        _positive(("steps", self.steps), ("val_every", self.val_every),
                  ("checkpoint_every", self.checkpoint_every), ("log_every", self.log_every))
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be a probability in (0, 1), got {self.threshold}")
        if self.finetune_stage2_on_stage1 and self.model.name != "doccnet":
            raise ValueError("finetune_stage2_on_stage1 needs model.name = doccnet")

    @property
    def total_steps(self) -> int:
        """Steps of all phases."""
        return self.steps + (self.finetune.steps if self.finetune_stage2_on_stage1 else 0)


def _positive(*pairs: tuple[str, int]) -> None:
    for name, value in pairs:
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass
class TrainResult:
    """What a run did."""

    out_dir: str
    step: int  # completed steps (global)
    total_steps: int
    stopped: str  # "done" | "max_steps" | "max_minutes" | "signal"
    best_iou: float | None
    best_step: int | None
    last_val: dict[str, float] | None
    last_loss: float | None
    seconds: float
    last_path: str
    best_path: str | None


# ------------------------------------------------------------------- config resolution


def builtin_config_path(name: str) -> Path:
    """Path of a built-in config shipped in the package."""
    if name not in BUILTIN_CONFIGS:
        raise ConfigError(f"unknown built-in config {name!r}; valid: {', '.join(BUILTIN_CONFIGS)}")
    return Path(str(resources.files("recon_cli").joinpath("configs", f"{name}.yaml")))


def _load_config_source(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    if path.is_file() or path.suffix in (".yaml", ".yml") or str(source) not in BUILTIN_CONFIGS:
        return load_yaml(path)
    return load_yaml(builtin_config_path(str(source)))


def resolve_config(
    *,
    model: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
) -> TrainConfig:
    """Layer built-in config for ``model`` < ``config_file`` (a path or a built-in name) < overrides.

    ``base`` (the ``config.yaml`` of a run being resumed) replaces the built-in layer.
    Unknown keys anywhere raise ConfigError naming the dotted key.
    """
    file_data = _load_config_source(config_file) if config_file is not None else {}
    file_model = file_data.get("model", {}).get("name") if isinstance(file_data.get("model"), dict) else None
    base_model = base.get("model", {}).get("name") if base else None
    name = model or file_model or base_model
    if name is None:
        raise ConfigError(f"choose a model with --model ({', '.join(MODEL_NAMES)})")
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
    for other, where in ((file_model, "the config file"), (base_model, "the run being resumed")):
        if other is not None and other != name:
            raise ConfigError(f"--model {name} conflicts with model.name {other} in {where}")
    raw = base if base is not None else load_yaml(builtin_config_path(name))
    raw = deep_merge(raw, file_data)
    for text in overrides:
        raw = deep_merge(raw, parse_override(text))
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        raise ConfigError("config.model: expected a mapping")
    raw = dict(raw)
    raw["model"] = deep_merge(to_dict(default_model_config(name)), model_raw)
    return from_dict(TrainConfig, _floats(raw), where="config")


_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _floats(value: Any) -> Any:
    """YAML 1.1 reads ``3e-4`` (no dot) as a string: turn such strings into floats."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return float(value)
    return value


def config_to_yaml(config: TrainConfig) -> str:
    """The config as YAML (plain values, key order of the dataclasses)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# ---------------------------------------------------------------- deterministic sampling


def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Dataset indices of the global batch of ``step``: a slice of the seeded epoch permutations."""
    if n < 1:
        raise DatasetError("the training split is empty")
    out: list[np.ndarray] = []
    pos = step * batch_size
    need = batch_size
    while need:
        epoch, offset = divmod(pos, n)
        take = min(need, n - offset)
        out.append(_epoch_permutation(n, seed, epoch)[offset:offset + take])
        pos += take
        need -= take
    return np.concatenate(out)


def item_seed(seed: int, step: int, slot: int) -> int:
    """Seed of one item's random choices, from (seed, step, slot in the global batch)."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1)[0])


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps ``start..stop-1``, this rank's ``[(index, item_seed), ...]``."""

    def __init__(self, n: int, batch_size: int, *, seed: int, start: int, stop: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            idx = batch_indices(self.n, self.batch_size, step, self.seed)
            slots = range(self.rank, self.batch_size, self.world_size)
            yield [(int(idx[s]), item_seed(self.seed, step, s)) for s in slots]


class SeededItems(torch.utils.data.Dataset):
    """Wraps a dataset so ``ds[(index, seed)]`` draws its randomness from ``seed``.

    The global ``random``, ``numpy`` and ``torch`` generators are seeded for the
    call and restored afterwards, so results do not depend on which worker
    process or how many items came before.
    """

    def __init__(self, base: torch.utils.data.Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, seed = key
        with _seeded(seed):
            return self.base[index]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, np.integer)):
            out[key] = torch.as_tensor([int(v) for v in values])
        else:
            out[key] = values
    return out


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


# --------------------------------------------------------------------------- network


def occupancy_loss(logits: Tensor, occ: Tensor) -> Tensor:
    """BCE with logits summed over points, averaged over the batch (OccNet). (B,N),(B,N) -> ()."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), occ.float(), reduction="none")
    return loss.sum(-1).mean()


class TrainNet(nn.Module):
    """The network of one training step: losses of the trained stages, stacked.

    DDP wraps this module (not the stages) so every trained parameter goes
    through the wrapper's forward and its gradients are synchronised.
    """

    def __init__(self, model: nn.Module, stages: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.stages = stages

    def forward(self, points: Tensor, occ: Tensor, image: Tensor | None, cloud: Tensor | None) -> Tensor:
        """points (B,N,3), occ (B,N), image (B,3,S,S), cloud (B,P,3) -> losses (n_stages,)."""
        losses = []
        for stage in self.stages:
            inputs = image if stage == 1 else cloud
            logits = self.model.stage(stage)(points, inputs)  # (B, N)
            losses.append(occupancy_loss(logits, occ))
        return torch.stack(losses)


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
    stages = tuple(s for s, has in ((1, m.has_stage1), (2, m.has_stage2)) if has)
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


# ------------------------------------------------------------------------ RNG states


def rng_state() -> dict[str, Any]:
    """Global RNG states as plain values and tensors (weights_only-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": _plain(random.getstate()),
        "numpy": [str(kind), [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


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
        with_image=m.has_stage1,
        with_pointcloud=m.has_stage2,
        augment=d.augment and train,
        seed=config.seed,
    )


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


# --------------------------------------------------------------------- the trainer


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop saves last.pt at the end of the step and exits."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run (use :func:`train`)."""

    def __init__(self, config: TrainConfig, *, data_root: Path, out_dir: Path, resume: bool,
                 on_event: EventFn | None, max_steps: int | None, max_minutes: float | None,
                 info: DistInfo, device: torch.device) -> None:
        self.config, self.root, self.out = config, data_root, out_dir
        self.resume, self.on_event = resume, on_event
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.info, self.device = info, device
        self.phases = plan_phases(config)
        self.step = 0
        self.best_iou: float | None = None
        self.best_step: int | None = None
        self.last_val: dict[str, float] | None = None
        self.last_loss: float | None = None
        self.phase_best: dict[str, float] = {}
        self.cache: dict[str, Tensor] | None = None
        self.val_cache: dict[str, Tensor] | None = None
        if config.optim.batch_size % info.world_size:
            raise ConfigError(
                f"optim.batch_size ({config.optim.batch_size}) must be divisible by the number of "
                f"processes ({info.world_size})"
            )
        if device.type == "cuda":
            self.autocast_dtype = None if config.precision == "fp32" else torch.bfloat16
        else:
            self.autocast_dtype = torch.bfloat16 if config.precision == "bf16" else None

    # ----------------------------------------------------------------- helpers
    def emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None and self.info.is_main:
            self.on_event(event)

    def log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    # --------------------------------------------------------------- checkpoints
    def save(self, name: str, model: nn.Module, optimizer: torch.optim.Optimizer | None, phase: Phase) -> Path:
        """Write ``out_dir/name`` (rank 0). Without ``optimizer`` (best.pt) no optimizer/RNG state is kept."""
        from recon_cli.io.checkpoint import save_checkpoint

        path = self.out / name
        if self.info.is_main:
            extra = {
                "step": int(self.step),
                "phase": phase.name,
                "best_iou": None if self.best_iou is None else float(self.best_iou),
                "best_step": self.best_step,
                "phase_best": {k: float(v) for k, v in self.phase_best.items()},
                "last_val": self.last_val,
                "world_size": int(self.info.world_size),
                "train_config": to_dict(self.config),
            }
            if optimizer is not None:
                extra.update(optimizer=optimizer.state_dict(), rng=rng_state())
            save_checkpoint(path, model, self.config.model, extra=extra)
            self.emit({"type": "checkpoint", "step": self.step, "path": str(path)})
        return path

    def load_resume(self, model: nn.Module) -> dict[str, Any] | None:
        from recon_cli.io.checkpoint import load_checkpoint

        path = self.out / "last.pt"
        if not path.is_file():
            return None
        loaded, cfg, extra = load_checkpoint(path, device="cpu")
        if to_dict(cfg) != to_dict(self.config.model):
            raise CheckpointError("model config differs from the run being resumed", path=path)
        missing = [k for k in ("step", "optimizer", "rng") if k not in extra]
        if missing:
            raise CheckpointError(f"not a resumable training checkpoint (missing {', '.join(missing)})", path=path)
        model.load_state_dict(loaded.state_dict())
        self.step = int(extra["step"])
        self.best_iou = extra.get("best_iou")
        self.best_step = extra.get("best_step")
        self.phase_best = dict(extra.get("phase_best") or {})
        self.last_val = extra.get("last_val")
        set_rng_state(extra["rng"])
        return extra

    # ------------------------------------------------------------------- run
    def run(self) -> TrainResult:
        t0 = time.perf_counter()
        cfg = self.config
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        from recon_cli.models import build_model

        model = build_model(cfg.model).to(self.device)
        extra = self.load_resume(model) if self.resume else None
        if self.resume and extra is None:
            self.emit({"type": "message", "text": f"no {self.out / 'last.pt'} yet: starting from step 0"})
        self._write_config()
        train_set = _make_dataset(cfg, self.root, cfg.data.train_split, train=True)
        val_set = _make_dataset(cfg, self.root, cfg.data.val_split, train=False)
        if len(train_set) == 0:
            raise DatasetError(f"no models in split {cfg.data.train_split!r}", path=self.root)
        self.emit({"type": "start", "step": self.step, "total_steps": cfg.total_steps,
                   "train_models": len(train_set), "val_models": len(val_set),
                   "device": str(self.device), "world_size": self.info.world_size,
                   "phases": [dataclasses.asdict(p) for p in self.phases]})
        stopped = "done"
        run_start_step = self.step
        with _StopFlag() as flag:
            for phase in self.phases:
                if self.step >= phase.stop:
                    continue
                opt_state = extra["optimizer"] if extra is not None and extra.get("phase") == phase.name else None
                stopped = self._run_phase(phase, model, train_set, val_set, opt_state, flag, t0, run_start_step)
                extra = None
                if stopped != "done":
                    break
        if self.step >= cfg.total_steps:
            stopped = "done"
        return TrainResult(
            out_dir=str(self.out), step=self.step, total_steps=cfg.total_steps, stopped=stopped,
            best_iou=self.best_iou, best_step=self.best_step, last_val=self.last_val,
            last_loss=self.last_loss, seconds=time.perf_counter() - t0,
            last_path=str(self.out / "last.pt"),
            best_path=str(self.out / "best.pt") if (self.out / "best.pt").exists() else None,
        )

    def _write_config(self) -> None:
        """config.yaml, and log.jsonl cut back to the steps that last.pt holds (a fresh run empties it)."""
        if not self.info.is_main:
            return
        from recon_cli.io.atomic import atomic_write_text

        atomic_write_text(self.out / "config.yaml", config_to_yaml(self.config))
        log = self.out / "log.jsonl"
        if log.exists():
            kept = []
            for line in log.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    if json.loads(line)["step"] <= self.step:
                        kept.append(line + "\n")
            atomic_write_text(log, "".join(kept))

    def _run_phase(self, phase: Phase, model: nn.Module, train_set: Any, val_set: Any,
                   opt_state: dict[str, Any] | None, flag: _StopFlag, t0: float, run_start: int) -> str:
        cfg = self.config
        params, optimizer, step_net = self._setup_phase(phase, model, opt_state)
        if phase.cloud == "pred":
            self._prepare_finetune(model, train_set, val_set, phase, optimizer)
        self.emit({"type": "phase", "name": phase.name, "start": phase.start, "stop": phase.stop,
                   "step": self.step, "stages": list(phase.stages)})
        sampler = StepBatchSampler(len(train_set), cfg.optim.batch_size,
                                   seed=cfg.seed + 1000 * self.phases.index(phase), start=self.step,
                                   stop=phase.stop, rank=self.info.rank, world_size=self.info.world_size)
        loader = _loader(SeededItems(train_set), sampler, _workers(cfg, self.device, self.info), self.device,
                         cfg, persistent=False)
        n_stages = len(phase.stages)
        window = {"t": time.perf_counter(), "n": 0, "loss": torch.zeros(n_stages)}
        pending = torch.zeros(n_stages, device=self.device)  # summed since the last sync, on the device
        pending_n = 0
        # CPU: read the losses every step; CUDA: every few steps so the GPU never waits for the host
        sync_every = 1 if self.device.type != "cuda" else min(10, cfg.log_every)
        model.train()
        for batch in loader:
            lr = lr_at(cfg, phase, self.step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pending += self._train_step(step_net, optimizer, params, batch, phase)  # (n_stages,)
            pending_n += 1
            self.step += 1
            final = self.step >= phase.stop
            capped = self.max_steps is not None and self.step - run_start >= self.max_steps
            due = (final or capped or self.step % sync_every == 0 or self.step % cfg.log_every == 0
                   or self.step % cfg.val_every == 0 or self.step % cfg.checkpoint_every == 0)
            event: dict[str, Any] = {"type": "step", "step": self.step, "total_steps": cfg.total_steps,
                                     "phase": phase.name, "lr": lr}
            if not due:  # every rank takes the same decision: no collective on this step
                self.emit(event)
                continue
            # one collective: mean losses since the last sync, and the stop votes of all ranks
            votes = self._stop_votes(flag, t0, capped=capped)
            packed = torch.cat([pending.float() / pending_n, votes.to(self.device)])
            packed = _all_reduce_sum(packed, self.info, self.device).cpu()
            losses = packed[:n_stages] / self.info.world_size
            if not torch.isfinite(losses).all():
                raise ReconError(f"the loss became {float(losses.sum())} at step {self.step}; lower optim.lr "
                                 f"(last.pt holds the last good state)", path=self.out)
            window["loss"] += losses * pending_n
            window["n"] += pending_n
            pending.zero_()
            pending_n = 0
            self.last_loss = float(losses.sum())
            event.update(loss=self.last_loss, **{f"loss{s}": float(v) for s, v in zip(phase.stages, losses)})
            self.emit(event)
            stop_reason = _first_vote(packed[n_stages:])
            if self.step % cfg.log_every == 0 or final or stop_reason:
                self._log_window(window, phase, lr, t0)
            if self.step % cfg.val_every == 0 or final:
                self._validate(model, val_set, phase, optimizer)  # also writes last.pt
                model.train()
            elif self.step % cfg.checkpoint_every == 0 or stop_reason:
                self.save("last.pt", model, optimizer, phase)
            if stop_reason:
                return stop_reason
        return "done"

    def _setup_phase(self, phase: Phase, model: nn.Module, opt_state: dict[str, Any] | None
                     ) -> tuple[list[Tensor], torch.optim.Optimizer, nn.Module]:
        """Freeze what the phase does not train; Adam (restored on resume); DDP / compile wrappers."""
        o = self.config.optim
        for p in model.parameters():
            p.requires_grad_(False)
        for s in phase.stages:
            for p in model.stage(s).parameters():
                p.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=phase.lr, betas=o.betas, weight_decay=o.weight_decay)
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        net: nn.Module = TrainNet(model, phase.stages)
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        step_net = torch.compile(net) if self.config.compile else net
        return params, optimizer, step_net

    def _stop_votes(self, flag: _StopFlag, t0: float, *, capped: bool) -> Tensor:
        votes = torch.zeros(3)
        votes[0] = float(capped)
        if self.max_minutes is not None and time.perf_counter() - t0 >= 60.0 * self.max_minutes:
            votes[1] = 1
        votes[2] = float(flag.raised)
        return votes

    def _train_step(self, net: nn.Module, optimizer: torch.optim.Optimizer, params: list[Tensor],
                    batch: dict[str, Any], phase: Phase) -> Tensor:
        points = _to(batch, "points", self.device)  # (B, N, 3)
        occ = _to(batch, "occ", self.device)  # (B, N)
        image = _to(batch, "image", self.device) if 1 in phase.stages else None
        cloud = self._cloud(batch, phase) if 2 in phase.stages else None
        optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            losses = net(points, occ, image, cloud)  # (n_stages,)
        losses.sum().backward()
        if self.config.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)
        optimizer.step()
        return losses.detach()

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

    def _log_window(self, window: dict[str, Any], phase: Phase, lr: float, t0: float) -> None:
        now = time.perf_counter()
        n = max(1, window["n"])
        record: dict[str, Any] = {
            "step": self.step, "phase": phase.name,
            "loss": float(window["loss"].sum() / n),
            **{f"loss{s}": float(v / n) for s, v in zip(phase.stages, window["loss"])},
            "lr": lr, "samples_per_s": self.config.optim.batch_size * n / max(1e-9, now - window["t"]),
            "elapsed": now - t0,
        }
        self.log(record)
        self.emit({"type": "log", **record})
        window.update(t=now, n=0, loss=torch.zeros_like(window["loss"]))

    # -------------------------------------------------------------- validation
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

    # --------------------------------------------------------------- finetune
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


def iou_per_object(logits: Tensor, occ: Tensor, threshold_logit: float) -> Tensor:
    """IoU of ``logits > threshold_logit`` against ``occ >= 0.5``, per object. (B,N),(B,N) -> (B,)"""
    pred = logits > threshold_logit
    gt = occ >= 0.5
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def _first_vote(votes: Tensor) -> str:
    for flag, name in zip(votes.tolist(), ("max_steps", "max_minutes", "signal")):
        if flag > 0:
            return name
    return ""


# ------------------------------------------------------------------------ entry point


def train(
    config: TrainConfig,
    *,
    data_root: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    on_event: EventFn | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train ``config.model`` on the ShapeNet-layout dataset at ``data_root``.

    Writes ``out_dir/config.yaml``, ``log.jsonl``, ``last.pt`` and ``best.pt``.
    ``resume`` continues from ``out_dir/last.pt`` exactly (model, optimizer,
    step, RNG, data order). ``max_steps`` limits the steps of this call,
    ``max_minutes`` its wall time; either stops cleanly after saving ``last.pt``,
    as does SIGTERM/SIGINT. Launched by ``torchrun``, runs DistributedDataParallel
    (only rank 0 writes files and reports events).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    if not data_root.is_dir():
        raise DatasetError("no such dataset folder", path=data_root)
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
    if max_minutes is not None and max_minutes <= 0:
        raise ConfigError(f"max_minutes must be > 0, got {max_minutes}")
    if not resume and (out_dir / "last.pt").exists():
        raise ConfigError("a run already exists here; pass --resume to continue it or choose another --out",
                          path=out_dir)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device, local_rank=local_rank)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what runs outside bf16 autocast
    info = _init_distributed(device)
    threads_before = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        trainer = Trainer(config, data_root=data_root, out_dir=out_dir, resume=resume, on_event=on_event,
                          max_steps=max_steps, max_minutes=max_minutes, info=info, device=device)
        return trainer.run()
    finally:
        torch.set_num_threads(threads_before)
        if info.created:
            import torch.distributed as dist

            dist.destroy_process_group()
