"""Occupancy decoder with conditional batch normalisation (OccNet's DecoderCBatchNorm).

query points (B, N, 3) -> fc to ``hidden`` -> ``n_blocks`` ResNet blocks
(CBN, ReLU, fc, CBN, ReLU, fc, + residual) -> CBN, ReLU -> fc to one logit.

In ``eval()`` mode every CBN is a per-shape affine map of its input (BatchNorm
uses its running statistics), so :meth:`Decoder.forward` takes a fused path:
the affine maps are computed once per shape, the second CBN of each block is
folded into the preceding linear layer (a per-shape weight matrix, applied by
``baddbmm``), and long point sets are processed in chunks that stay in cache.
The chunking never changes results (each point is independent in eval mode).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Points per chunk in the fused eval path on the CPU (keeps the activations in cache);
#: on a GPU all points go in one pass.
EVAL_CHUNK = 4096


class CBatchNorm(nn.Module):
    """BatchNorm (no affine) whose scale and shift come from the shape code ``c``."""

    def __init__(self, c_dim: int, features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(features, affine=False)
        self.conv_gamma = nn.Linear(c_dim, features)
        self.conv_beta = nn.Linear(c_dim, features)
        nn.init.zeros_(self.conv_gamma.weight)
        nn.init.ones_(self.conv_gamma.bias)
        nn.init.zeros_(self.conv_beta.weight)
        nn.init.zeros_(self.conv_beta.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x (B, N, F), c (B, C) -> (B, N, F)."""
        b, n, f = x.shape
        normed = self.bn(x.reshape(b * n, f)).view(b, n, f)  # stats over all B*N points per feature
        return self.conv_gamma(c).unsqueeze(1) * normed + self.conv_beta(c).unsqueeze(1)

    def affine(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """Eval-mode CBN as ``x * scale + shift``: c (B, C) -> scale, shift (B, F)."""
        inv = torch.rsqrt(self.bn.running_var + self.bn.eps)  # (F,)
        scale = self.conv_gamma(c) * inv
        shift = self.conv_beta(c) - self.bn.running_mean * scale
        return scale, shift


class CResnetBlock(nn.Module):
    """ResNet block: CBN, ReLU, fc, CBN, ReLU, fc, + residual."""

    def __init__(self, c_dim: int, size: int) -> None:
        super().__init__()
        self.bn_0 = CBatchNorm(c_dim, size)
        self.bn_1 = CBatchNorm(c_dim, size)
        self.fc_0 = nn.Linear(size, size)
        self.fc_1 = nn.Linear(size, size)
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x (B, N, H), c (B, C) -> (B, N, H)."""
        net = self.fc_0(F.relu(self.bn_0(x, c)))
        dx = self.fc_1(F.relu(self.bn_1(net, c)))
        return x + dx


class Decoder(nn.Module):
    """Conditional occupancy decoder: points (B, N, 3), code (B, c_dim) -> logits (B, N)."""

    def __init__(self, c_dim: int = 256, hidden: int = 256, n_blocks: int = 5) -> None:
        super().__init__()
        self.c_dim = c_dim
        self.fc_p = nn.Linear(3, hidden)
        self.blocks = nn.ModuleList([CResnetBlock(c_dim, hidden) for _ in range(n_blocks)])
        self.bn = CBatchNorm(c_dim, hidden)
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, p: Tensor, c: Tensor) -> Tensor:
        """p (B, N, 3), c (B, c_dim) -> logits (B, N)."""
        if self.training:
            return self._forward_train(p, c)
        return self._forward_eval(p, c)

    def _forward_train(self, p: Tensor, c: Tensor) -> Tensor:
        net = self.fc_p(p)  # (B, N, H)
        for block in self.blocks:
            net = block(net, c)
        return self.fc_out(F.relu(self.bn(net, c))).squeeze(-1)

    def folded(self, c: Tensor) -> tuple[list[tuple[Tensor, ...]], Tensor, Tensor]:
        """Per-shape parameters of the fused eval path.

        The residual stream is kept free of biases: the biases of ``fc_p`` and of
        every ``fc_1`` are accumulated into an offset that is folded into the shift
        of the following CBN; the second CBN of each block is folded into ``fc_0``.
        Returns ([(s0, t0, w0, b0) per block], s_out, t_out); s, t (B, 1, H),
        w0 (B, H, H), b0 (B, 1, H).
        """
        layers = []
        offset = self.fc_p.bias  # (H,) bias carried by the residual stream
        for block in self.blocks:
            s0, t0 = block.bn_0.affine(c)  # (B, H)
            s1, t1 = block.bn_1.affine(c)
            w0 = block.fc_0.weight.t().unsqueeze(0) * s1.unsqueeze(1)  # (B, H_in, H_out)
            b0 = (block.fc_0.bias * s1 + t1).unsqueeze(1)  # (B, 1, H_out)
            layers.append((s0.unsqueeze(1), (t0 + offset * s0).unsqueeze(1), w0, b0))
            offset = offset + block.fc_1.bias
        s_out, t_out = self.bn.affine(c)
        return layers, s_out.unsqueeze(1), (t_out + offset * s_out).unsqueeze(1)

    def _forward_eval(self, p: Tensor, c: Tensor) -> Tensor:
        b, n, _ = p.shape
        hidden = self.fc_p.out_features
        layers, s_out, t_out = self.folded(c)
        wp = self.fc_p.weight.t()  # (3, H)
        w1 = [block.fc_1.weight.t() for block in self.blocks]  # (H, H) shared by all shapes
        w_out = self.fc_out.weight.t()  # (H, 1)
        step = EVAL_CHUNK if p.device.type == "cpu" else max(n, 1)
        outs = []
        for start in range(0, n, step):
            chunk = p[:, start : start + step]  # (B, m, 3)
            m = chunk.shape[1]
            net = torch.matmul(chunk, wp)  # (B, m, H), bias-free residual stream
            flat = net.view(b * m, hidden)
            for (s0, t0, w0, b0), w in zip(layers, w1):
                a = torch.addcmul(t0, net, s0).relu_()
                h = torch.baddbmm(b0, a, w0).relu_()  # fc_0 with the second CBN folded in
                flat.addmm_(h.view(b * m, hidden), w)  # residual += fc_1 (bias folded away)
            a = torch.addcmul(t_out, net, s_out).relu_()
            outs.append(torch.matmul(a, w_out).squeeze(-1) + self.fc_out.bias)
        if not outs:
            return p.new_zeros((b, 0))
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
