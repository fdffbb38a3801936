"""Encoders: ResNet18 for images, ResNet PointNet for point clouds."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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


class ResNet18Encoder(nn.Module):
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

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) in [0, 1] -> code (B, c_dim)."""
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))


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
