"""Encoders: ResNet18 and EfficientNet-Lite0 for images, ResNet PointNet for point clouds.

Image encoders share one interface: ``forward(image) -> code``, ``features(image)
-> (pooled, feature map)``, ``project(pooled) -> code`` and ``units()`` (the
trunk's stages in order, which ``trainable_blocks`` freezes from the front).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from recon_cli.errors import CheckpointError, ConfigError
from recon_cli.models.config import ImageEncoderConfig

#: ImageNet statistics; images enter the encoder as RGB in [0, 1] and are normalised inside.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and a residual."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class TrunkFreezing:
    """Freezes the first units of an image encoder's trunk (``trainable_blocks``).

    Frozen units get ``requires_grad=False`` from :meth:`frozen_parameters` users
    and stay in eval mode under ``train()``, so their BatchNorm statistics do not drift.
    """

    trainable_blocks: int = -1

    def units(self) -> list[nn.Module]:  # pragma: no cover - defined by each encoder
        raise NotImplementedError

    def frozen_units(self) -> list[nn.Module]:
        """The units ``trainable_blocks`` freezes (none for -1, all for 0)."""
        units = self.units()
        if self.trainable_blocks < 0:
            return []
        return units[: max(0, len(units) - self.trainable_blocks)]

    def frozen_parameters(self) -> list[nn.Parameter]:
        """Parameters of the frozen units."""
        return [p for unit in self.frozen_units() for p in unit.parameters()]

    def train(self, mode: bool = True):  # noqa: ANN201 - nn.Module.train signature
        nn.Module.train(self, mode)  # type: ignore[arg-type]
        for unit in self.frozen_units():
            unit.eval()
        return self

    # A trunk is ``normalise``, then its units in order (``run_unit``), then ``pool``:
    # so a feature cache can hold the activation before the trained units (the tail)
    # and training runs only the tail on it.

    def normalise(self, x: Tensor) -> Tensor:  # pragma: no cover - defined by each encoder
        raise NotImplementedError

    def run_unit(self, index: int, h: Tensor) -> Tensor:  # pragma: no cover - defined by each encoder
        raise NotImplementedError

    def pool(self, fmap: Tensor) -> Tensor:  # pragma: no cover - defined by each encoder
        raise NotImplementedError

    def cache_tail(self) -> int:
        """Trunk units trained on top of cached activations: ``trainable_blocks`` (0 = all frozen).

        Raises ConfigError when no cache can serve (the whole trunk trains).
        """
        n = len(self.units())
        if self.trainable_blocks < 0 or self.trainable_blocks >= n:
            raise ConfigError(f"the feature cache needs frozen trunk units, but image_encoder.trainable_blocks="
                              f"{self.trainable_blocks} trains all {n} (use 0 to {n - 1}, or data.feature_cache=false)")
        return self.trainable_blocks

    def cache_input(self, x: Tensor) -> Tensor:
        """What the feature cache stores for images x (B, 3, S, S): the pooled feature when the
        trunk is frozen, else the activation entering the trained tail (B, C, H, W)."""
        tail = self.cache_tail()
        if tail == 0:
            return self.features(x)[0]
        h = self.normalise(x)
        for index in range(len(self.units()) - tail):
            h = self.run_unit(index, h)
        return h

    def from_cached(self, cached: Tensor) -> Tensor:
        """Code (B, c_dim) from what :meth:`cache_input` gave (the tail runs here, with gradients)."""
        tail = self.cache_tail()
        if tail == 0:
            return self.project(cached)
        n = len(self.units())
        h = cached
        for index in range(n - tail, n):
            h = self.run_unit(index, h)
        return self.project(self.pool(h))


class ResNet18Encoder(TrunkFreezing, nn.Module):
    """ResNet18 (BasicBlock, [2, 2, 2, 2]) + global average pooling + linear map to ``c_dim``.

    Input: (B, 3, S, S) RGB in [0, 1] (object on white, S = 224 by default);
    the ImageNet mean/std normalisation happens here.
    """

    def __init__(self, c_dim: int = 256, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        widths = [width, width * 2, width * 4, width * 8]
        layers = []
        c_in = width
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(c_in, w, stride), BasicBlock(w, w)))
            c_in = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(c_in, c_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def units(self) -> list[nn.Module]:
        """Stem (conv1 + bn1), then the 8 basic blocks in order."""
        stem = nn.ModuleList([self.conv1, self.bn1])
        return [stem, *(block for layer in (self.layer1, self.layer2, self.layer3, self.layer4) for block in layer)]

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, 3, S, S) in [0, 1] -> pooled (B, 8*width), feature map (B, 8*width, S/32, S/32)."""
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        fmap = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return fmap.mean(dim=(2, 3)), fmap

    def normalise(self, x: Tensor) -> Tensor:
        """ImageNet normalisation (what the trunk's first unit takes)."""
        return (x - self.mean) / self.std

    def run_unit(self, index: int, h: Tensor) -> Tensor:
        """Unit ``index`` of :meth:`units` (the stem includes its ReLU and max pooling)."""
        if index == 0:
            return F.max_pool2d(F.relu(self.bn1(self.conv1(h))), 3, stride=2, padding=1)
        return self.units()[index](h)

    def pool(self, fmap: Tensor) -> Tensor:
        """Global average pooling."""
        return fmap.mean(dim=(2, 3))

    def project(self, pooled: Tensor) -> Tensor:
        """pooled feature (B, 8*width) -> code (B, c_dim)."""
        return self.fc(pooled)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) in [0, 1] -> code (B, c_dim)."""
        return self.project(self.features(x)[0])


class ResnetBlockFC(nn.Module):
    """Fully connected ResNet block (ReLU, fc, ReLU, fc, + shortcut)."""

    def __init__(self, size_in: int, size_out: int) -> None:
        super().__init__()
        size_h = min(size_in, size_out)
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else None
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., size_in) -> (..., size_out)."""
        dx = self.fc_1(F.relu(self.fc_0(F.relu(x))))
        return (x if self.shortcut is None else self.shortcut(x)) + dx


class ResnetPointnet(nn.Module):
    """PointNet with ResNet blocks and max pooling concatenated between blocks (OccNet's)."""

    def __init__(self, c_dim: int = 512, hidden: int = 512, n_blocks: int = 5) -> None:
        super().__init__()
        self.fc_pos = nn.Linear(3, 2 * hidden)
        self.blocks = nn.ModuleList([ResnetBlockFC(2 * hidden, hidden) for _ in range(n_blocks)])
        self.fc_c = nn.Linear(hidden, c_dim)

    def forward(self, p: Tensor) -> Tensor:
        """p (B, T, 3) -> code (B, c_dim)."""
        net = self.fc_pos(p)  # (B, T, 2H)
        for i, block in enumerate(self.blocks):
            net = block(net)  # (B, T, H)
            if i < len(self.blocks) - 1:
                pooled = net.max(dim=1, keepdim=True).values.expand_as(net)
                net = torch.cat([net, pooled], dim=2)
        return self.fc_c(F.relu(net.max(dim=1).values))


# ------------------------------------------------------------------ image encoder registry


def _resnet18(cfg: ImageEncoderConfig) -> nn.Module:
    return ResNet18Encoder(cfg.c_dim, cfg.width)


def _efficientnet_lite0(cfg: ImageEncoderConfig) -> nn.Module:
    from recon_cli.models.efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(cfg.c_dim)


def _r2n2_cnn(cfg: ImageEncoderConfig) -> nn.Module:
    from recon_cli.models.r2n2 import R2N2CNNEncoder

    return R2N2CNNEncoder(cfg.c_dim, cfg.width)


#: ``model.image_encoder.name`` -> builder.
IMAGE_ENCODERS: dict[str, Callable[[ImageEncoderConfig], nn.Module]] = {
    "resnet18": _resnet18,
    "efficientnet-lite0": _efficientnet_lite0,
    "r2n2-cnn": _r2n2_cnn,
}


def build_image_encoder(cfg: ImageEncoderConfig) -> nn.Module:
    """The image encoder ``cfg.name`` with ``cfg.trainable_blocks`` applied (weights not loaded)."""
    builder = IMAGE_ENCODERS.get(cfg.name)
    if builder is None:
        raise ConfigError(f"unknown image encoder {cfg.name!r}; valid: {', '.join(IMAGE_ENCODERS)}")
    encoder = builder(cfg)
    encoder.trainable_blocks = cfg.trainable_blocks
    return encoder


def init_image_encoder(encoder: nn.Module, cfg: ImageEncoderConfig) -> None:
    """Load the starting weights ``cfg.init`` names into the trunk (nothing for ``""``).

    The classifier of the source (``fc.*`` / ``_fc.*``) is dropped: the encoder's
    own final linear layer keeps its random initialisation.
    """
    if not cfg.init:
        return
    if cfg.name == "efficientnet-lite0":
        from recon_cli.models.efficientnet import load_imagenet_weights

        load_imagenet_weights(encoder.backbone, None if cfg.init == "imagenet" else cfg.init)
        return
    path = Path(cfg.init)
    if not path.is_file():
        raise ConfigError("image_encoder.init: no such state-dict file", path=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise CheckpointError(f"cannot read a state dict ({exc.__class__.__name__})", path=path) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError("not a state dict", path=path)
    trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in encoder.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(own) - set(trunk))
    if missing:
        naming = "torchvision-named ResNet18" if cfg.name == "resnet18" else f"{cfg.name} (recon naming)"
        raise CheckpointError(f"not a {naming} state dict (missing {', '.join(missing[:3])})", path=path)
    for key, value in own.items():
        if tuple(trunk[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{key} has shape {tuple(trunk[key].shape)}, the encoder {tuple(value.shape)} "
                                  f"(ImageNet ResNet18 needs image_encoder.width=64)", path=path)
    encoder.load_state_dict({k: trunk[k] for k in own}, strict=False)
