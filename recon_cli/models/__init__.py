"""Networks: encoders, conditional decoder, OccupancyModel, D-OccNet and the model registry."""

from __future__ import annotations

from collections.abc import Callable

from recon_cli.errors import ConfigError
from recon_cli.models.config import (
    MODEL_NAMES,
    DecoderConfig,
    ImageEncoderConfig,
    ModelConfig,
    PointNetConfig,
    default_model_config,
    small_model_config,
)
from recon_cli.models.decoder import Decoder
from recon_cli.models.encoders import ResNet18Encoder, ResnetPointnet
from recon_cli.models.occupancy import DOccNet, OccupancyModel

#: model name -> builder. Every builder returns a DOccNet holding the stages the name asks for.
REGISTRY: dict[str, Callable[[ModelConfig], DOccNet]] = {name: DOccNet for name in MODEL_NAMES}


def build_model(cfg: ModelConfig) -> DOccNet:
    """Build the model ``cfg.name`` (ConfigError listing the valid names for an unknown one)."""
    builder = REGISTRY.get(cfg.name)
    if builder is None:
        raise ConfigError(f"unknown model {cfg.name!r}; valid models: {', '.join(REGISTRY)}")
    return builder(cfg)


__all__ = [
    "MODEL_NAMES",
    "REGISTRY",
    "DOccNet",
    "Decoder",
    "DecoderConfig",
    "ImageEncoderConfig",
    "ModelConfig",
    "OccupancyModel",
    "PointNetConfig",
    "ResNet18Encoder",
    "ResnetPointnet",
    "build_model",
    "default_model_config",
    "small_model_config",
]
