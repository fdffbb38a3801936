"""Inference of the voxel model family (3D-R2N2): photos -> 32^3 occupancy probabilities -> mesh.

:class:`VoxelBackend` holds a loaded ``r2n2`` checkpoint; :class:`VoxelReconstructor`
has the interface of :class:`recon_cli.pipeline.Reconstructor` that the CLI, the
Python API and ``recon eval`` use (``reconstruct_images``, ``reconstruct_views``),
so a voxel model plugs into the same commands. The views of one object are fused
by the model's own recurrent unit, in the order given (there is no ``fusion`` choice).

Extraction (:func:`grid_to_voxel_mesh`): the probability grid is upsampled by
``upsample`` (trilinear interpolation between voxel centres; 1 = none, the
paper's blocky marching cubes), padded with zeros so the surface closes, and
marching cubes runs at the probability threshold. Vertices are mapped to the
normalised cube [-0.5, 0.5]^3 of the dataset's ``model.binvox`` (voxel i's
centre at -0.5 + (i + 0.5) / R).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import trimesh

from recon_cli.errors import CheckpointError, InputError
from recon_cli.extract.marching_cubes import marching_cubes
from recon_cli.extract.postprocess import empty_mesh, simplify
from recon_cli.pipeline import ExtractOptions, Reconstruction

#: Surface probability of checkpoints that store none: 3D-R2N2's voxel threshold.
DEFAULT_VOXEL_THRESHOLD = 0.4
#: Default upsampling of the 32^3 grid before marching cubes (smooth surfaces instead of voxel steps).
DEFAULT_UPSAMPLE = 2
#: File name of the shipped voxel checkpoint (beside ``doccnet.pt``).
DEFAULT_VOXEL_WEIGHTS = "r2n2.pt"


class VoxelBackend:
    """A loaded ``r2n2`` model on a device (eval mode, float32)."""

    has_stage1 = True
    has_stage2 = False
    default_model = None

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device = "cpu", threads: int | None = None,
                 thresholds: dict[str, float] | None = None) -> None:
        from recon_cli.runtime.base import resolve_device
        from recon_cli.runtime.threads import chosen_threads

        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.config = model.config
        self.image_size = self.config.image_encoder.image_size
        self.resolution = self.config.voxel.resolution
        self.threads = threads if threads is not None else chosen_threads()
        self.thresholds = dict(thresholds or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "cpu", threads: int | None = None) -> VoxelBackend:
        """Load an ``r2n2`` checkpoint (CheckpointError naming the file when it is another model)."""
        from recon_cli.io.checkpoint import default_thresholds, load_checkpoint

        model, cfg, extra = load_checkpoint(path, device="cpu")
        if not cfg.is_voxel:
            raise CheckpointError(f"a {cfg.name} checkpoint, not an r2n2 one (use it with --model auto)", path=path)
        return cls(model, device=device, threads=threads, thresholds=default_thresholds(extra))

    @torch.inference_mode()
    def probabilities(self, views: torch.Tensor) -> torch.Tensor:
        """views (V, 3, S, S) of one object, in order -> occupancy probabilities (R, R, R) on the CPU."""
        logits = self.model(views[None].to(self.device, torch.float32))  # (1, R, R, R)
        return torch.sigmoid(logits[0].float()).cpu()


def load_voxel_reconstructor(weights: Path | None, *, options: ExtractOptions, device: str = "auto",
                             threads: int | None = None, backend: str = "auto") -> tuple[VoxelReconstructor, str]:
    """The reconstructor of ``--model r2n2``: ``weights`` or the shipped ``weights/r2n2.pt``.

    ``options.upsampling_steps`` picks the grid upsampling as ``--quality`` does for MISE:
    draft (1 step) none, standard (2) 2x, high (3) 4x.
    """
    from recon_cli.errors import ConfigError
    from recon_cli.reconstruct import find_weights

    if backend == "onnx":
        raise ConfigError("the r2n2 model runs on torch only (no ONNX export): use --backend torch or auto")
    path = find_weights(weights, default=DEFAULT_VOXEL_WEIGHTS)
    model = VoxelBackend.from_checkpoint(path, device=device, threads=threads)
    upsample = 2 ** max(0, options.upsampling_steps - 1)
    return VoxelReconstructor(model, options=options, upsample=upsample), str(path)


def grid_to_voxel_mesh(prob: torch.Tensor | np.ndarray, threshold: float, *, upsample: int = DEFAULT_UPSAMPLE,
                       mc_backend: str = "pymcubes") -> trimesh.Trimesh:
    """Mesh of the ``threshold`` level set of a probability grid (R, R, R) [x, y, z] over [-0.5, 0.5]^3."""
    grid = torch.as_tensor(np.asarray(prob, dtype=np.float32) if not isinstance(prob, torch.Tensor) else prob)
    grid = grid.float()
    r = grid.shape[0]
    if upsample < 1:
        raise InputError(f"upsample must be at least 1, got {upsample}")
    if upsample > 1:
        size = (r - 1) * upsample + 1
        grid = torch.nn.functional.interpolate(grid[None, None], size=(size,) * 3, mode="trilinear",
                                               align_corners=True)[0, 0]
    padded = torch.nn.functional.pad(grid, (1, 1, 1, 1, 1, 1), value=0.0)
    verts, faces = marching_cubes(padded.numpy() if mc_backend == "pymcubes" else padded, threshold,
                                  backend=mc_backend)
    if len(faces) == 0:
        return empty_mesh()
    verts = ((verts - 1.0) / upsample + 0.5) / r - 0.5
    return trimesh.Trimesh(verts, faces, process=False)


class VoxelReconstructor:
    """Photos -> meshes with a :class:`VoxelBackend` (the interface of :class:`~recon_cli.pipeline.Reconstructor`).

    ``options.threshold`` None = the checkpoint's tuned threshold (else 0.4);
    ``options.simplify_faces`` simplifies the meshes; the MISE settings do not apply.
    """

    def __init__(self, backend: VoxelBackend, *, options: ExtractOptions | None = None,
                 upsample: int = DEFAULT_UPSAMPLE, on_progress: Callable[[str, int, int], None] | None = None) -> None:
        options = options if options is not None else ExtractOptions()
        if options.threshold is None:
            options = dataclasses.replace(
                options, threshold=float(backend.thresholds.get("r2n2", DEFAULT_VOXEL_THRESHOLD)))
        if upsample < 1:
            raise InputError(f"upsample must be at least 1, got {upsample}")
        self.backend, self.options, self.upsample, self.on_progress = backend, options, upsample, on_progress
        self.stages = "r2n2"

    def reconstruct_images(self, images: torch.Tensor) -> list[Reconstruction]:
        """One object per image (B, 3, S, S)."""
        return self.reconstruct_views([images[i : i + 1] for i in range(len(images))])

    def reconstruct_views(self, view_sets: Sequence[torch.Tensor], *, fusion: str | None = None
                          ) -> list[Reconstruction]:
        """One object per (V_i, 3, S, S) set, its views fused by the recurrent unit in order.

        ``fusion`` is accepted for interface compatibility and must be None or ``"logits"``
        (the default of the occupancy models): the voxel model has one way to fuse views.
        """
        if fusion not in (None, "logits"):
            raise InputError(f"the r2n2 model fuses views in its recurrent unit; fusion {fusion!r} does not apply")
        out = []
        for k, views in enumerate(view_sets):
            if views.ndim != 4 or views.shape[1] != 3 or len(views) == 0:
                raise InputError(f"views must have shape (V, 3, S, S) with V >= 1, got {tuple(views.shape)}")
            start = time.perf_counter()
            prob = self.backend.probabilities(views)
            mesh = self.mesh(prob)
            seconds = time.perf_counter() - start
            out.append(Reconstruction(mesh, None, None, seconds, int(prob.numel()), {"total": seconds},
                                      grid=prob.numpy()))
            if self.on_progress is not None:
                self.on_progress("r2n2", k + 1, len(view_sets))
        return out

    def reconstruct_points(self, clouds: Sequence[np.ndarray]) -> list[Reconstruction]:
        """Not possible: the voxel model reads photos."""
        raise InputError("the r2n2 model reconstructs from photos, not point clouds")

    def mesh(self, prob: torch.Tensor) -> trimesh.Trimesh:
        """The mesh of one probability grid with these options."""
        mesh = grid_to_voxel_mesh(prob, float(self.options.threshold), upsample=self.upsample)
        if self.options.simplify_faces and len(mesh.faces) > self.options.simplify_faces:
            mesh = simplify(mesh, self.options.simplify_faces)
        return mesh
