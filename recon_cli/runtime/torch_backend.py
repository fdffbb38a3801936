"""Torch runtime: a DOccNet in eval mode on one device, behind the Backend protocol.

On the CPU the decoder hot loop goes through :meth:`TorchBackend.decode_many`:
each shape's query points are cut into fixed chunks of :data:`CPU_CHUNK`
points that ``threads`` single-threaded workers evaluate
(:class:`recon_cli.runtime.parallel.ChunkPool`) with the
:class:`recon_cli.runtime.decoder_kernel.DecoderKernel` of the chosen
``precision`` (float32, or bfloat16 on CPUs with native bf16). Chunks never mix
shapes, so a shape's logits do not depend on what else is in the batch.

``precision="mixed"`` (what ``auto`` picks on CPUs with native bf16) is bfloat16
where only a surface's sign matters, corrected near it: a call of
:meth:`TorchBackend.decode_many` that gives the extraction ``level`` (MISE
cutting a mesh, for the final mesh and for the stage-1 mesh alike) is evaluated
in bfloat16, then every point whose logit lies within :data:`MIXED_BAND` of the
level is evaluated again in float32; a call without it (raw logits) runs in
float32. The reconstruction pipeline then re-evaluates in float32 the remaining
evaluated points at the ends of the edges the surface crosses
(``recon_cli.pipeline._exact_surface_values``), so marching cubes places every
vertex from float32 values. A mesh therefore differs from the float32 one only
in the last bits of its vertices (chunks of other sizes round differently) and
where a bfloat16 error beyond the band flips a sign (none on the example
images). Stage 2's 300 points are drawn with the input image's random numbers
(``recon_cli.pipeline.Reconstructor._rng``), so such a stage-1 mesh gives the
same points to within those bits, and the final mesh matches the float32 one
(IoU >= 0.999 on the examples, ``python -m benchmarks --only speed``). Most
points MISE evaluates lie near the surface and need float32 anyway, which caps
the gain; pure ``bfloat16`` is faster but its meshes differ (IoU 0.68-0.99 on
the examples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from recon_cli.models import DOccNet
from recon_cli.runtime.base import resolve_device
from recon_cli.runtime.decoder_kernel import DecoderKernel, resolve_precision
from recon_cli.runtime.parallel import ChunkPool, map_chunks
from recon_cli.runtime.threads import chosen_threads, torch_threads

#: Query points per chunk on the CPU (activations stay in cache; measured in benchmarks/bench_decoder.py).
CPU_CHUNK = 4096

#: ``mixed`` precision: points whose bfloat16 logit is within this of the level are evaluated again in
#: float32 (so that their side of the surface is float32's). bfloat16 logits differ from float32 by
#: 0.02-0.05 on average and by more than 0.1 at about 1% of the points, mostly far from the surface; a
#: band of 0.1 re-evaluates 2-24% of the final stage's points on the example images (0.2: 4-40%).
MIXED_BAND = 0.1


def redo_band(values: list[np.ndarray], queries: Sequence[np.ndarray], level: float,
              exact: Callable[[list[np.ndarray]], list[np.ndarray]]) -> list[np.ndarray]:
    """Mixed precision's correction: each shape's points whose fast value lies within :data:`MIXED_BAND`
    of ``level`` are evaluated again by ``exact`` (per-shape points -> values), in place; returns ``values``."""
    band = [np.flatnonzero(np.abs(v - level) < MIXED_BAND) for v in values]
    redone = exact([np.asarray(q, dtype=np.float32).reshape(-1, 3)[b] for q, b in zip(queries, band)])
    for v, b, e in zip(values, band, redone):
        v[b] = e
    return values


class TorchBackend:
    """Runs a :class:`DOccNet` (always in ``eval()`` mode, under ``torch.inference_mode``).

    ``threads``: CPU worker threads of the decoder (None = the process's choice,
    see :mod:`recon_cli.runtime.threads`); ``precision``: "float32" (default,
    the model's own numbers), "bfloat16", "mixed" (see the module docstring) or
    "auto" (mixed where the CPU has native bf16 matrix instructions, else float32).
    """

    def __init__(self, model: DOccNet, *, device: str | torch.device = "cpu", threads: int | None = None,
                 precision: str = "float32") -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        cfg = model.config
        self.config = cfg
        self.has_stage1 = model.stage1 is not None
        self.has_stage2 = model.stage2 is not None
        self.image_size = cfg.image_encoder.image_size
        self.n_input_points = cfg.n_input_points
        self.precision = resolve_precision(precision, self.device)
        if self.device.type != "cpu":
            self.precision = "float32"
        self.threads = threads if threads is not None else chosen_threads()
        self.cpu_chunk = CPU_CHUNK
        self._kernels: dict[tuple[int, str], DecoderKernel] = {}
        self._pool = ChunkPool(self.threads)
        self.thresholds: dict[str, float] = {}  # tuned on validation, from the checkpoint (default_thresholds)
        self.default_model: str | None = None  # what --model auto runs (checkpoint's default_model)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", threads: int | None = None,
                        precision: str = "float32") -> TorchBackend:
        """Load a checkpoint file (CheckpointError naming it on problems)."""
        from recon_cli.io.checkpoint import load_checkpoint

        dev = resolve_device(device)
        from recon_cli.io.checkpoint import default_model, default_thresholds

        model, cfg, extra = load_checkpoint(path, device=dev)
        if cfg.is_voxel:
            from recon_cli.errors import CheckpointError

            raise CheckpointError("an r2n2 (voxel) checkpoint: use it with --model r2n2", path=path)
        backend = cls(model, device=dev, threads=threads, precision=precision)
        backend.thresholds = default_thresholds(extra)
        backend.default_model = default_model(extra)
        return backend

    @torch.inference_mode()
    def encode_image(self, images: Tensor) -> Tensor:
        """images (B, 3, S, S) in [0, 1] -> codes (B, c1)."""
        return self.model.stage(1).encode(images.to(self.device, torch.float32))

    @torch.inference_mode()
    def encode_points(self, points: Tensor) -> Tensor:
        """points (B, P, 3) -> codes (B, c2)."""
        return self.model.stage(2).encode(points.to(self.device, torch.float32))

    @torch.inference_mode()
    def decode(self, stage: int, points: Tensor, c: Tensor) -> Tensor:
        """points (B, N, 3), codes (B, c) -> logits (B, N)."""
        return self.model.stage(stage).decode(points.to(self.device, torch.float32), c.to(self.device))

    def _kernel(self, stage: int, precision: str) -> DecoderKernel:
        kernel = self._kernels.get((stage, precision))
        if kernel is None:
            kernel = self._kernels[stage, precision] = DecoderKernel(self.model.stage(stage).decoder, precision)
        return kernel

    def decode_many(self, stage: int, queries: Sequence[np.ndarray], codes: Tensor, *, level: float | None = None,
                    fast: bool = False) -> list[np.ndarray]:
        """Per-shape points (M_i, 3) float32 and codes (B, c) -> per-shape logits (M_i,) float32.

        ``level``: the logit of the surface these values will be cut at, when
        only their side of it and the values near it matter (a mesh cut at it);
        ``mixed`` precision then runs in bfloat16 and redoes the points within
        :data:`MIXED_BAND` of it in float32. Without it, ``mixed`` is float32.
        ``fast``: ``mixed`` precision's bfloat16 values alone, for a caller that
        combines several fields and redoes its own band (the pipeline's blend).
        CPU only (fixed chunks per shape over the worker threads, torch at one
        intra-op thread meanwhile); on a GPU use :meth:`decode` on padded batches.
        """
        if len(queries) != len(codes):
            raise ValueError(f"{len(queries)} point sets for {len(codes)} codes")
        if self.device.type != "cpu":
            raise ValueError("decode_many runs on the CPU; use decode on a GPU")
        with torch_threads(1):
            if self.precision != "mixed":
                return self._decode_chunks(self._kernel(stage, self.precision), queries, codes)
            if fast:
                return self._decode_chunks(self._kernel(stage, "bfloat16"), queries, codes)
            if level is None:
                return self._decode_chunks(self._kernel(stage, "float32"), queries, codes)
            values = self._decode_chunks(self._kernel(stage, "bfloat16"), queries, codes)
            return redo_band(values, queries, level,
                             lambda points: self._decode_chunks(self._kernel(stage, "float32"), points, codes))

    def _decode_chunks(self, kernel: DecoderKernel, queries: Sequence[np.ndarray], codes: Tensor
                       ) -> list[np.ndarray]:
        params = kernel.prepare(codes)
        return map_chunks(self._pool, queries, self.cpu_chunk,
                          lambda i, chunk: kernel.run(params[i], torch.from_numpy(chunk)).numpy())

    def close(self) -> None:
        """Stop the decoder's worker threads."""
        self._pool.close()

