"""3D-R2N2 (Choy et al. 2016): views -> 2D encoder -> 3D convolutional recurrent grid -> 3D decoder -> voxels.

Architecture (the "Res3D-GRU-3" variant of the paper, with the differences noted):

* **2D encoder**: any image encoder of the registry. ``r2n2-cnn`` is the paper's
  residual CNN (six conv blocks of [96, 128, 256, 256, 256, 256] channels, 7x7 then
  3x3 kernels, a 1x1-conv shortcut per block, leaky ReLU, 2x2 max pooling after
  each block, a fully connected layer); ours pools the last map to 2x2 before the
  fully connected layer (1024 inputs at 256 channels, the paper's FC width) so
  any image size works. ``efficientnet-lite0`` (ImageNet weights, frozen, cached
  features) is the default of the built-in ``r2n2`` config.
* **3D convolutional GRU** on a ``grid``^3 grid of ``hidden``-channel cells
  (paper: 4^3 x 128, 3x3x3 kernels)::

      u_t = sigmoid(W_u x_t + U_u * h_{t-1} + b_u)            update gate
      r_t = sigmoid(W_r x_t + U_r * h_{t-1} + b_r)            reset gate
      h_t = (1 - u_t) . h_{t-1} + u_t . tanh(W_h x_t + U_h * (r_t . h_{t-1}) + b_h)

  ``W x_t`` is a fully connected map of the view's code to every cell, ``U *`` a 3D
  convolution, ``.`` the element-wise product; h_0 = 0. The LSTM variant
  (``unit: lstm``) follows the paper's 3D-LSTM without output gate:
  ``s_t = f_t . s_{t-1} + i_t . tanh(W_s x_t + U_s * h_{t-1} + b_s)``, ``h_t = tanh(s_t)``.
* **3D decoder**: the paper unpools (2x) and convolves (3x3x3) to [128, 128, 64,
  32, 2] channels; ours upsamples by 4x4x4 transposed convolutions of stride 2
  (``decoder_channels``, leaky ReLU), then one 3x3x3 convolution to a single
  logit per voxel (two-class softmax = sigmoid of one logit); about 3x fewer
  operations per voxel, which matters on a CPU.

Views shorter than the batch's longest sequence are masked: a masked step keeps
the hidden state unchanged, so one batch can mix 1..N views per object.

Output grids are indexed ``[x, y, z]`` like ``model.binvox`` and cover the
normalised cube [-0.5, 0.5]^3 (voxel centres at ``-0.5 + (i + 0.5) / R``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from recon_cli.models.config import ModelConfig, VoxelConfig
from recon_cli.models.encoders import IMAGENET_MEAN, IMAGENET_STD, TrunkFreezing, build_image_encoder


class R2N2CNNEncoder(TrunkFreezing, nn.Module):
    """The residual 2D CNN of 3D-R2N2 (``width`` = first block's channels, 96 in the paper).

    Input (B, 3, S, S) RGB in [0, 1] (normalised inside with the ImageNet statistics).
    """

    def __init__(self, c_dim: int = 256, width: int = 96) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        channels = [width, round(width * 4 / 3)] + [round(width * 8 / 3)] * 4  # 96, 128, 256 x 4
        blocks, c_in = [], 3
        for i, c_out in enumerate(channels):
            blocks.append(_ResBlock2d(c_in, c_out, 7 if i == 0 else 3))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = 4 * c_in
        self.fc = nn.Linear(self.feature_dim, c_dim)

    def units(self) -> list[nn.Module]:
        """The six conv blocks in order."""
        return list(self.blocks)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, 3, S, S) -> flattened 2x2-pooled feature (B, 4*C), feature map (B, C, S/64, S/64)."""
        x = (x - self.mean) / self.std
        for block in self.blocks:
            x = F.max_pool2d(block(x), 2, ceil_mode=True)
        return F.adaptive_avg_pool2d(x, 2).flatten(1), x

    def normalise(self, x: Tensor) -> Tensor:
        """ImageNet normalisation."""
        return (x - self.mean) / self.std

    def run_unit(self, index: int, h: Tensor) -> Tensor:
        """Block ``index`` and its 2x2 max pooling."""
        return F.max_pool2d(self.blocks[index](h), 2, ceil_mode=True)

    def pool(self, fmap: Tensor) -> Tensor:
        """2x2 adaptive average pooling, flattened."""
        return F.adaptive_avg_pool2d(fmap, 2).flatten(1)

    def project(self, pooled: Tensor) -> Tensor:
        """feature (B, 4*C) -> code (B, c_dim) (leaky ReLU, as the paper's FC layer)."""
        return F.leaky_relu(self.fc(pooled), 0.01)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 3, S, S) -> code (B, c_dim)."""
        return self.project(self.features(x)[0])


class _ResBlock2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        out = self.conv2(F.leaky_relu(self.conv1(x), 0.01))
        return F.leaky_relu(out + self.shortcut(x), 0.01)


class _GridInput(nn.Module):
    """The fully connected map ``W x_t`` of a view's code to ``gates`` grids of ``hidden`` channels."""

    def __init__(self, c_dim: int, hidden: int, grid: int, gates: int) -> None:
        super().__init__()
        self.shape = (gates * hidden, grid, grid, grid)
        self.fc = nn.Linear(c_dim, gates * hidden * grid ** 3)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, c_dim) -> (B, gates*hidden, g, g, g)."""
        return self.fc(x).view(x.shape[0], *self.shape)


class Conv3dGRU(nn.Module):
    """The paper's 3D convolutional GRU (see the module docstring)."""

    def __init__(self, c_dim: int, hidden: int, grid: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden, self.grid = hidden, grid
        self.input = _GridInput(c_dim, hidden, grid, 3)
        self.gates = nn.Conv3d(hidden, 2 * hidden, kernel, padding=kernel // 2, bias=False)  # U_u, U_r
        self.candidate = nn.Conv3d(hidden, hidden, kernel, padding=kernel // 2, bias=False)  # U_h

    def initial(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        """h_0 = 0: a tuple of (B, hidden, g, g, g)."""
        return (like.new_zeros(batch, self.hidden, self.grid, self.grid, self.grid),)

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One view: code x (B, c_dim), state (h,) -> (h_new,)."""
        (h,) = state
        wu, wr, wh = self.input(x).chunk(3, dim=1)
        uu, ur = self.gates(h).chunk(2, dim=1)
        update = torch.sigmoid(wu + uu)
        reset = torch.sigmoid(wr + ur)
        candidate = torch.tanh(wh + self.candidate(reset * h))
        return ((1 - update) * h + update * candidate,)


class Conv3dLSTM(nn.Module):
    """The paper's 3D convolutional LSTM (input and forget gates, no output gate)."""

    def __init__(self, c_dim: int, hidden: int, grid: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden, self.grid = hidden, grid
        self.input = _GridInput(c_dim, hidden, grid, 3)
        self.recurrent = nn.Conv3d(hidden, 3 * hidden, kernel, padding=kernel // 2, bias=False)

    def initial(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        """(h_0, s_0) = 0."""
        zero = like.new_zeros(batch, self.hidden, self.grid, self.grid, self.grid)
        return zero, zero

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One view: code x (B, c_dim), state (h, s) -> (h_new, s_new)."""
        h, s = state
        wi, wf, ws = self.input(x).chunk(3, dim=1)
        ui, uf, us = self.recurrent(h).chunk(3, dim=1)
        s_new = torch.sigmoid(wf + uf) * s + torch.sigmoid(wi + ui) * torch.tanh(ws + us)
        return torch.tanh(s_new), s_new


class VoxelDecoder(nn.Module):
    """Hidden grid (B, H, g, g, g) -> voxel logits (B, R, R, R), R = g * 2^len(channels)."""

    def __init__(self, hidden: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = hidden
        for c_out in channels:
            layers += [nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            c_in = c_out
        self.up = nn.Sequential(*layers)
        self.out = nn.Conv3d(c_in, 1, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        """(B, H, g, g, g) -> (B, R, R, R)."""
        return self.out(self.up(h)).squeeze(1)


UNITS = {"gru": Conv3dGRU, "lstm": Conv3dLSTM}


class R2N2(nn.Module):
    """3D-R2N2: image encoder + 3D recurrent unit + 3D decoder (``model.name = r2n2``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        v: VoxelConfig = cfg.voxel
        self.encoder = build_image_encoder(cfg.image_encoder)
        self.unit = UNITS[v.unit](cfg.image_encoder.c_dim, v.hidden, v.grid, v.kernel)
        self.decoder = VoxelDecoder(v.hidden, tuple(v.decoder_channels))

    @property
    def name(self) -> str:
        """Registry name of the model."""
        return self.config.name

    @property
    def resolution(self) -> int:
        """Voxels per side of the output grid."""
        return self.config.voxel.resolution

    def encode(self, images: Tensor) -> Tensor:
        """images (B, V, 3, S, S) -> codes (B, V, c_dim)."""
        b, v = images.shape[:2]
        return self.encoder(images.flatten(0, 1)).view(b, v, -1)

    def project(self, features: Tensor) -> Tensor:
        """Cached trunk features (B, V, D) -> codes (B, V, c_dim)."""
        b, v = features.shape[:2]
        return self.encoder.project(features.flatten(0, 1)).view(b, v, -1)

    def fuse(self, codes: Tensor, mask: Tensor | None = None) -> Tensor:
        """codes (B, V, c_dim) in view order, mask (B, V) bool (False = no view) -> hidden (B, H, g, g, g)."""
        state = self.unit.initial(codes.shape[0], codes)
        for t in range(codes.shape[1]):
            new = self.unit(codes[:, t], state)
            if mask is None:
                state = new
            else:
                keep = mask[:, t].view(-1, 1, 1, 1, 1)
                state = tuple(torch.where(keep, n, o) for n, o in zip(new, state))
        return state[0]

    def decode(self, hidden: Tensor) -> Tensor:
        """hidden (B, H, g, g, g) -> voxel logits (B, R, R, R) indexed [x, y, z]."""
        return self.decoder(hidden)

    def forward(self, images: Tensor, mask: Tensor | None = None) -> Tensor:
        """images (B, V, 3, S, S), mask (B, V) -> voxel logits (B, R, R, R)."""
        return self.decode(self.fuse(self.encode(images), mask))
