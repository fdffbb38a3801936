"""Typed model configuration (frozen dataclasses; plain dicts in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recon_cli.errors import ConfigError

#: The model names the registry knows.
MODEL_NAMES: tuple[str, ...] = ("onet", "onet-pcl", "doccnet")


@dataclass(frozen=True)
class ImageEncoderConfig:
    """ResNet18 image encoder. ``width`` is the base channel count (64 = standard ResNet18).

    Input: RGB in [0, 1] on a white background, ``image_size`` x ``image_size``
    (224 by default); the encoder applies the ImageNet mean/std itself.
    """

    c_dim: int = 256
    width: int = 64
    image_size: int = 224


@dataclass(frozen=True)
class PointNetConfig:
    """ResNet PointNet point-cloud encoder (OccNet's ``ResnetPointnet``)."""

    c_dim: int = 512
    hidden: int = 512
    n_blocks: int = 5


@dataclass(frozen=True)
class DecoderConfig:
    """Occupancy decoder with conditional batch normalisation."""

    c_dim: int = 256
    hidden: int = 256
    n_blocks: int = 5


@dataclass(frozen=True)
class ModelConfig:
    """A whole model: ``onet`` (image), ``onet-pcl`` (points) or ``doccnet`` (both stages)."""

    name: str = "doccnet"
    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    pointnet: PointNetConfig = field(default_factory=PointNetConfig)
    decoder1: DecoderConfig = field(default_factory=lambda: DecoderConfig(c_dim=256))
    decoder2: DecoderConfig = field(default_factory=lambda: DecoderConfig(c_dim=512))
    n_input_points: int = 300

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(f"unknown model {self.name!r}; valid models: {', '.join(MODEL_NAMES)}")
        if self.decoder1.c_dim != self.image_encoder.c_dim:
            raise ConfigError(
                f"decoder1.c_dim ({self.decoder1.c_dim}) must equal image_encoder.c_dim ({self.image_encoder.c_dim})"
            )
        if self.decoder2.c_dim != self.pointnet.c_dim:
            raise ConfigError(f"decoder2.c_dim ({self.decoder2.c_dim}) must equal pointnet.c_dim ({self.pointnet.c_dim})")
        for where, value in (
            ("image_encoder.width", self.image_encoder.width),
            ("image_encoder.image_size", self.image_encoder.image_size),
            ("pointnet.hidden", self.pointnet.hidden),
            ("decoder1.hidden", self.decoder1.hidden),
            ("decoder2.hidden", self.decoder2.hidden),
            ("n_input_points", self.n_input_points),
        ):
            if value < 1:
                raise ConfigError(f"{where} must be positive, got {value}")

    @property
    def has_stage1(self) -> bool:
        """Whether the model has the image stage."""
        return self.name in ("onet", "doccnet")

    @property
    def has_stage2(self) -> bool:
        """Whether the model has the point-cloud stage."""
        return self.name in ("onet-pcl", "doccnet")


def default_model_config(name: str) -> ModelConfig:
    """The paper sizes for model ``name`` (ConfigError listing the valid names otherwise)."""
    return ModelConfig(name=name)


def small_model_config(name: str) -> ModelConfig:
    """Tiny widths for tests and smoke runs (fast on a CPU, same architecture)."""
    return ModelConfig(
        name=name,
        image_encoder=ImageEncoderConfig(c_dim=16, width=4, image_size=64),
        pointnet=PointNetConfig(c_dim=16, hidden=16, n_blocks=2),
        decoder1=DecoderConfig(c_dim=16, hidden=16, n_blocks=2),
        decoder2=DecoderConfig(c_dim=16, hidden=16, n_blocks=2),
        n_input_points=300,
    )
