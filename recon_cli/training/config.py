"""Typed training config, built-in configs and config resolution (CLI layers and overrides)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from recon_cli.config import deep_merge, from_dict, load_yaml, parse_override, to_dict
from recon_cli.errors import ConfigError
from recon_cli.models.config import MODEL_NAMES, ModelConfig, default_model_config


#: Built-in configs shipped in ``recon_cli/configs`` (``<name>.yaml``).
BUILTIN_CONFIGS: tuple[str, ...] = ("onet", "onet-pcl", "doccnet", "doccnet-cpu", "doccnet-lite", "r2n2")

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
    # with frozen image trunk units (model.image_encoder.trainable_blocks=0, or N: the last N units train on
    # cached activations): encode every training view once
    feature_cache: bool = True
    feature_variants: int = 2  # cached images per view: the whole view + (n-1) random crops (augment)
    feature_views: int = 0  # views cached per model, evenly spaced (0 = all): fewer for big datasets
    feature_photo_variants: int = 0  # more cached images per view: photo-like (background, light, bad mask)
    # more cached images per procedural model, from photo-like cameras (elevation -5..45 degrees, field of view
    # 30-60, any framing) instead of the renders' 25-30 degrees: each on the plain backdrop, and on backgrounds
    # for the photo variants; meshes regenerated with feature_camera_synth_seed (the --seed of `recon data synth`)
    feature_camera_views: int = 0
    feature_camera_synth_seed: int = 0
    feature_cache_dir: str = ""  # "" = <data>/.features
    near_surface_share: float = 0.0  # share of each item's query points drawn near the surface
    near_surface_sigma: float = 0.01  # std of their Gaussian offsets from pointcloud.npz samples
    near_surface_points: int = 32768  # near-surface points cached per model
    # times each imported (real, not procedural ``synth_*``) training model appears per epoch: real
    # objects are a sixth of the merged set and what users photograph
    imported_repeat: int = 1

    def __post_init__(self) -> None:
        _positive(("n_points", self.n_points), ("val_batch_size", self.val_batch_size),
                  ("prefetch_factor", self.prefetch_factor), ("feature_variants", self.feature_variants),
                  ("near_surface_points", self.near_surface_points), ("imported_repeat", self.imported_repeat))
        if not 0.0 <= self.near_surface_share <= 1.0:
            raise ValueError(f"data.near_surface_share must be in [0, 1], got {self.near_surface_share}")
        if self.feature_photo_variants < 0:
            raise ValueError(f"data.feature_photo_variants must be >= 0, got {self.feature_photo_variants}")
        if self.feature_camera_views < 0:
            raise ValueError(f"data.feature_camera_views must be >= 0, got {self.feature_camera_views}")
        if self.feature_views < 0:
            raise ValueError(f"data.feature_views must be >= 0, got {self.feature_views}")
        if not self.near_surface_sigma > 0:
            raise ValueError(f"data.near_surface_sigma must be > 0, got {self.near_surface_sigma}")
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
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on CUDA and on CPUs with native bf16
    compile: bool = False  # torch.compile the training step's network
    threads: int = 0  # torch intra-op CPU threads; 0 = torch's default (1 is much faster on a busy machine)
    finetune_stage2_on_stage1: bool = False
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # a checkpoint (e.g. weights/doccnet.pt) whose weights start a new run: same model config, fresh
    # optimiser and schedule ("" = initialise as model.image_encoder.init says)
    init_weights: str = ""

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
    signal: int | None = None  # the signal number when stopped == "signal" (SIGTERM 15, SIGINT 2)


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

