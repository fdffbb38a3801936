"""Networks: encoders, conditional decoder, OccupancyModel, D-OccNet and the model registry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import nn
from torch.nn import init

from recon_cli.errors import ConfigError
from recon_cli.models.config import (
    MODEL_NAMES,
    DecoderConfig,
    ImageEncoderConfig,
    ModelConfig,
    PointNetConfig,
    VoxelConfig,
    default_model_config,
    small_model_config,
)
from recon_cli.models.decoder import Decoder
from recon_cli.models.encoders import (
    IMAGE_ENCODERS,
    ResNet18Encoder,
    ResnetPointnet,
    build_image_encoder,
    init_image_encoder,
)
from recon_cli.models.occupancy import DOccNet, OccupancyModel

def _r2n2(cfg: ModelConfig) -> nn.Module:
    from recon_cli.models.r2n2 import R2N2

    return R2N2(cfg)


#: model name -> builder. The occupancy networks build a DOccNet holding the stages the name asks
#: for; ``r2n2`` builds the voxel model :class:`recon_cli.models.r2n2.R2N2`.
REGISTRY: dict[str, Callable[[ModelConfig], nn.Module]] = {
    **{name: DOccNet for name in MODEL_NAMES if name != "r2n2"}, "r2n2": _r2n2,
}


_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
)


@contextlib.contextmanager
def skip_weight_init() -> Iterator[None]:
    """Make ``torch.nn.init`` functions no-ops while building a model whose weights are loaded next.

    Random initialisation of the paper-size D-OccNet takes about a second on a
    small CPU; a checkpoint overwrites every parameter anyway. Not thread-safe:
    do not build other models in other threads meanwhile.
    """
    saved = {name: getattr(init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(init, name, _keep)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def _keep(tensor, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    return tensor


def build_model(cfg: ModelConfig, *, initialize: bool = True) -> nn.Module:
    """Build the model ``cfg.name`` (ConfigError listing the valid names for an unknown one).

    ``initialize=False`` leaves the weights uninitialised (for loading a state dict right after).
    """
    builder = REGISTRY.get(cfg.name)
    if builder is None:
        raise ConfigError(f"unknown model {cfg.name!r}; valid models: {', '.join(REGISTRY)}")
    if initialize:
        return builder(cfg)
    with skip_weight_init():
        return builder(cfg)


__all__ = [
    "IMAGE_ENCODERS",
    "MODEL_NAMES",
    "REGISTRY",
    "DOccNet",
    "Decoder",
    "DecoderConfig",
    "ImageEncoderConfig",
    "ModelConfig",
    "OccupancyModel",
    "PointNetConfig",
    "VoxelConfig",
    "ResNet18Encoder",
    "ResnetPointnet",
    "build_image_encoder",
    "build_model",
    "default_model_config",
    "init_image_encoder",
    "skip_weight_init",
    "small_model_config",
]
