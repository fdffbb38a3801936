"""The occupancy decoder's inference hot loop on the CPU, in float32 or bfloat16.

:class:`DecoderKernel` turns an eval-mode :class:`recon_cli.models.decoder.Decoder`
and one shape code into per-shape parameters once (:meth:`DecoderKernel.prepare`:
every conditional batch norm becomes a scale and shift, the second one of each
block is folded into ``fc_0``, the residual stream carries no biases; this is
the decoder's own :meth:`~recon_cli.models.decoder.Decoder.folded`), then
evaluates chunks of query points with them (:meth:`DecoderKernel.run`).

* ``float32`` runs the same operations as the decoder's own eval path
  (:meth:`~recon_cli.models.decoder.Decoder.forward` in eval mode), so its
  logits are the torch model's.
* ``bfloat16`` (CPUs with native bf16: AVX512-BF16 or AMX) runs the hidden
  linear layers through oneDNN with the ReLU or the residual addition fused into
  the matrix product (``torch.ops.mkldnn._linear_pointwise``), about 2.3x the
  float32 speed on one core here. The first layer (3 -> hidden) stays in
  float32: rounding the query coordinates to bfloat16 (8-bit mantissa) would
  move them by up to 0.002, a quarter of a 129^3 cell. Logits then differ from
  float32 by 0.02-0.05 on average and up to ~0.5 (benchmarks/bench_speed.py),
  which flips the inside/outside decision of points near the surface; the
  ``mixed`` precision of :class:`recon_cli.runtime.torch_backend.TorchBackend`
  re-evaluates exactly those points in float32.
  Without the fused oneDNN operator it falls back to plain bf16 matrix products.

A chunk is run with whatever torch threads the calling thread has; the
reconstruction pipeline calls it from single-threaded workers
(:mod:`recon_cli.runtime.parallel`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

PRECISIONS = ("auto", "float32", "bfloat16", "mixed")
#: What a DecoderKernel itself computes in (``mixed`` is composed from both by the backend).
KERNEL_PRECISIONS = ("float32", "bfloat16")


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """True when the CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


@functools.lru_cache(maxsize=1)
def fused_linear_available() -> bool:
    """Whether torch has oneDNN's fused linear + ReLU / + add operators (and they work here)."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x = torch.ones(2, 4, dtype=torch.bfloat16)
        w = torch.ones(3, 4, dtype=torch.bfloat16)
        y = op(x, w, None, "relu", [None], "")
        z = op.binary(x, y, w, None, "add")
        return bool(torch.allclose(z.float(), torch.full((2, 3), 8.0)))
    except Exception:  # missing operator, no oneDNN, unsupported CPU
        return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``auto`` -> mixed on CPUs with native bf16, float32 elsewhere (and on GPUs)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "mixed" if torch.device(device).type == "cpu" and native_bf16() else "float32"


@dataclass
class ShapeParams:
    """One shape's prepared decoder parameters (see :meth:`DecoderKernel.prepare`)."""

    blocks: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]]  # (s0, t0, w0, b0, w1) per block
    s_out: Tensor
    t_out: Tensor


class DecoderKernel:
    """Evaluate one decoder on chunks of points, per shape, in ``precision``."""

    def __init__(self, decoder: torch.nn.Module, precision: str = "float32") -> None:
        if precision not in KERNEL_PRECISIONS:
            raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
        self.decoder = decoder.eval()
        self.precision = precision
        self.fused = precision == "bfloat16" and fused_linear_available()
        dt = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self.dtype = dt
        with torch.inference_mode():
            # float32 keeps the decoder's own tensors and transposed views (bit-identical products)
            self.wp = decoder.fc_p.weight.detach()  # (H, 3), float32 in both precisions
            self.w_out = decoder.fc_out.weight.detach().t().float()  # (H, 1)
            self.b_out = decoder.fc_out.bias.detach().float()
            # fc_1 weights are shared by all shapes: (H_out, H_in) for oneDNN, (H_in, H_out) for addmm
            self.w1 = [blk.fc_1.weight.detach().to(dt).contiguous() for blk in decoder.blocks]
            self.w1_t = [blk.fc_1.weight.detach().to(dt).t() for blk in decoder.blocks]

    @torch.inference_mode()
    def prepare(self, codes: Tensor) -> list[ShapeParams]:
        """Codes (B, c) -> one :class:`ShapeParams` per shape.

        Each shape's parameters are computed from its code alone (a batch of one),
        so they do not depend on the other codes in the batch.
        """
        codes = codes.detach().to("cpu", torch.float32)
        return [self._prepare_one(codes[i : i + 1]) for i in range(len(codes))]

    def _prepare_one(self, code: Tensor) -> ShapeParams:
        layers, s_out, t_out = self.decoder.folded(code)
        if self.precision == "float32":  # the decoder's eval path, with a batch of one shape
            return ShapeParams([(s0, t0, w0, b0, w1) for (s0, t0, w0, b0), w1 in zip(layers, self.w1_t)], s_out, t_out)
        dt = self.dtype
        blocks = []
        for (s0, t0, w0, b0), w1 in zip(layers, self.w1 if self.fused else self.w1_t):
            w0_i = w0[0].t() if self.fused else w0[0]  # (H_out, H_in) for oneDNN, (H_in, H_out) for addmm
            blocks.append((s0[0, 0].to(dt).contiguous(), t0[0, 0].to(dt).contiguous(), w0_i.to(dt).contiguous(),
                           b0[0, 0].to(dt).contiguous(), w1))
        return ShapeParams(blocks, s_out[0, 0].to(dt).contiguous(), t_out[0, 0].to(dt).contiguous())

    @torch.inference_mode()
    def run(self, params: ShapeParams, points: Tensor) -> Tensor:
        """Points (m, 3) float32 -> logits (m,) float32 for the shape of ``params``."""
        if self.precision == "float32":
            return self._run_float32(params, points)
        net = (points @ self.wp.t()).to(self.dtype)  # float32 coordinates (see the module docstring)
        if self.fused:
            linear = torch.ops.mkldnn._linear_pointwise
            for s0, t0, w0, b0, w1 in params.blocks:
                a = torch.addcmul(t0, net, s0).relu_()
                h = linear(a, w0, b0, "relu", [None], "")
                net = linear.binary(h, net, w1, None, "add")  # residual += fc_1(h), in one oneDNN call
        else:
            for s0, t0, w0, b0, w1 in params.blocks:
                a = torch.addcmul(t0, net, s0).relu_()
                h = torch.addmm(b0, a, w0).relu_()
                net = torch.addmm(net, h, w1)
        a = torch.addcmul(params.t_out, net, params.s_out).relu_()
        return torch.addmm(self.b_out, a.float(), self.w_out).squeeze(-1)

    def _run_float32(self, params: ShapeParams, points: Tensor) -> Tensor:
        """The operations of the decoder's eval path on one chunk (batch of one shape)."""
        m, hidden = len(points), self.wp.shape[0]
        net = torch.matmul(points.unsqueeze(0), self.wp.t())  # (1, m, H)
        flat = net.view(m, hidden)
        for s0, t0, w0, b0, w1 in params.blocks:
            a = torch.addcmul(t0, net, s0).relu_()
            h = torch.baddbmm(b0, a, w0).relu_()
            flat.addmm_(h.view(m, hidden), w1)
        a = torch.addcmul(params.t_out, net, params.s_out).relu_()
        return (torch.matmul(a, self.w_out).squeeze(-1) + self.b_out)[0]
