"""Multi-view fusion: several photos of one object -> one mesh, without camera poses.

D-OccNet predicts occupancy in the object's canonical frame (+y up, the front along a fixed axis),
whatever the viewpoint of the photo, so views of one object can be fused
without knowing where each photo was taken from. Four strategies:

- ``logits``: every MISE query point is decoded once per view (with that view's
  image code) and the occupancy logits are averaged, a product of the views'
  independent beliefs; the stage-1 mesh of the fused field feeds stage 2.
- ``code``: the views' image codes are averaged into one code, decoded once
  (cheapest: no more decoder work than one view).
- ``cloud``: each view gets its own stage-1 mesh; their area-weighted surface
  samples are pooled and thinned by farthest-point sampling to the 300 points
  of stage 2 (needs a model with stage 2).
- ``chain``: each view runs the whole D-OccNet chain up to its own stage-2
  code (its stage-1 mesh, its 300 points); the stage-2 occupancy logits of all
  views are averaged at every MISE query (needs a model with stage 2). This
  averages out stage 2's per-view errors, which fusing at stage 1 cannot.

With one view every strategy gives exactly the single-view reconstruction.
Which one is the default was decided by measurement (README, `recon eval --views`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import trimesh

from recon_cli.errors import InputError
from recon_cli.io.choices import FUSION_STRATEGIES  # valid strategies (see the module docstring)
from recon_cli.pipeline import Reconstruction, Reconstructor, farthest_point_sampling, sample_input_points


#: The strategy used when none is named.
DEFAULT_FUSION = "logits"

BatchedEval = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


def check_fusion(fusion: str) -> str:
    """``fusion`` if it names a strategy, else InputError listing the valid ones."""
    if fusion not in FUSION_STRATEGIES:
        raise InputError(f"unknown fusion strategy {fusion!r}; valid: {', '.join(FUSION_STRATEGIES)}")
    return fusion


def mean_over_views(evaluate: BatchedEval, counts: Sequence[int]) -> BatchedEval:
    """A batched eval over shapes whose shape i is the mean of ``counts[i]`` consecutive rows of ``evaluate``.

    ``evaluate`` is a batched eval over all views (one code per view, shapes'
    views consecutive); each shape's query points are sent once per view.
    """

    def fused(queries: Sequence[np.ndarray]) -> list[np.ndarray]:
        expanded = [q for q, c in zip(queries, counts) for _ in range(c)]
        logits = evaluate(expanded)
        out, k = [], 0
        for q, c in zip(queries, counts):
            out.append(np.mean(np.stack(logits[k:k + c]), axis=0) if len(q) else np.zeros(0, np.float32))
            k += c
        return out

    return fused


def pooled_input_points(meshes: Sequence[trimesh.Trimesh], n: int, rng: np.random.Generator, *,
                        oversample: int = 10) -> np.ndarray:
    """(n, 3) float32 points spread over the union of ``meshes`` (area-weighted samples of each, then FPS).

    Empty meshes are ignored; with a single non-empty mesh this is exactly
    :func:`recon_cli.pipeline.sample_input_points`; with none it is a (0, 3) array.
    """
    usable = [m for m in meshes if len(m.faces) and m.area > 0]
    if len(usable) <= 1:
        return sample_input_points(usable[0] if usable else meshes[0], n, rng, oversample=oversample)
    parts = []
    for mesh in usable:
        samples, _ = trimesh.sample.sample_surface(mesh, n * oversample, seed=int(rng.integers(2**31)))
        parts.append(np.asarray(samples, dtype=np.float64))
    pooled = np.concatenate(parts)
    return pooled[farthest_point_sampling(pooled, n, rng)].astype(np.float32)


def _seed_key(views: torch.Tensor) -> torch.Tensor:
    """What seeds an object's stage-2 points: its views, or its image when it has one view (so that
    one view gives what :meth:`Reconstructor.reconstruct_images` gives)."""
    return views[0] if len(views) == 1 else views


class MultiViewReconstructor(Reconstructor):
    """A :class:`Reconstructor` that also fuses several views of each object into one mesh."""

    def reconstruct_views(self, view_sets: Sequence[torch.Tensor], *, fusion: str = DEFAULT_FUSION
                          ) -> list[Reconstruction]:
        """One Reconstruction per object from its views (each (V_i, 3, S, S) RGB in [0, 1] on white).

        For ``cloud`` fusion the Reconstruction's ``stage1_mesh`` is all views'
        stage-1 meshes together (overlapping shells).
        """
        check_fusion(fusion)
        if not self.backend.has_stage1:
            raise InputError("this model has no image stage (it is an onet-pcl model); give a point cloud instead")
        sets = list(view_sets)
        for views in sets:
            if views.ndim != 4 or views.shape[1] != 3 or len(views) == 0:
                raise InputError(f"views must have shape (V, 3, S, S) with V >= 1, got {tuple(views.shape)}")
            if not views.is_floating_point():
                raise InputError(f"views must be float RGB in [0, 1], got dtype {views.dtype}")
        if not sets:
            return []
        if fusion in ("cloud", "chain") and not self._use_stage2():
            raise InputError(f"{fusion} fusion works on stage 2, which this model (or --model onet) "
                             "does not run; use fusion 'logits' or 'code'")
        with torch.inference_mode():
            return self._reconstruct_views(sets, fusion)

    def _reconstruct_views(self, sets: list[torch.Tensor], fusion: str) -> list[Reconstruction]:
        start = time.perf_counter()
        b = len(sets)
        counts = [len(v) for v in sets]
        bounds = np.concatenate([[0], np.cumsum(counts)])
        timings: dict[str, float] = {}
        self._progress("encode", 0, b)
        codes = self.encode_images(torch.cat(sets))  # (sum V, c1), one view per forward pass
        timings["encode"] = time.perf_counter() - start
        self._progress("stage1", 0, b)
        t = time.perf_counter()
        steps1 = self._stage1_steps()
        clouds = None
        fused = known1 = None
        if fusion == "code":
            fused = torch.stack([codes[bounds[i]:bounds[i + 1]].mean(dim=0) for i in range(b)])
            meshes1, n1, known1 = self.extract_known(1, fused, upsampling_steps=steps1)
        elif fusion == "chain":
            timings["stage1"] = time.perf_counter() - t
            return self._chain(codes, torch.cat(sets), counts, timings, start)
        elif fusion == "logits":
            evaluate = mean_over_views(self._eval_fn(1, codes), counts)
            meshes1, n1 = self.extract_field(evaluate, b, upsampling_steps=steps1)
        else:
            per_view, n_view = self.extract(1, codes, upsampling_steps=steps1)
            groups = [per_view[bounds[i]:bounds[i + 1]] for i in range(b)]
            n1 = [int(sum(n_view[bounds[i]:bounds[i + 1]])) for i in range(b)]
            # seeded by each object's own views, not by its place in the batch (see Reconstructor._rng)
            clouds = [pooled_input_points(g, self.backend.n_input_points, self._rng(_seed_key(views)))
                      for g, views in zip(groups, sets, strict=True)]
            meshes1 = [g[0] if len(g) == 1 else trimesh.util.concatenate(list(g)) for g in groups]
        timings["stage1"] = time.perf_counter() - t
        return self._complete(meshes1, n1, timings, start, clouds=clouds, keys=[_seed_key(v) for v in sets],
                              codes1=fused, known1=known1)

    def _chain(self, codes: torch.Tensor, views: torch.Tensor, counts: list[int], timings: dict[str, float],
               start: float) -> list[Reconstruction]:
        """Per-view chains up to the stage-2 codes, then the mean of the views' stage-2 logits."""
        from recon_cli.extract.postprocess import empty_mesh

        n_points = self.backend.n_input_points
        per_view, n_view = self.extract(1, codes, upsampling_steps=self._stage1_steps())
        t = time.perf_counter()
        clouds = [sample_input_points(m, n_points, self._rng(view)) for m, view in zip(per_view, views, strict=True)]
        timings["sample"] = time.perf_counter() - t
        bounds = np.concatenate([[0], np.cumsum(counts)])
        usable = [[v for v in range(bounds[i], bounds[i + 1]) if len(clouds[v]) == n_points]
                  for i in range(len(counts))]
        objects = [i for i, views in enumerate(usable) if views]  # objects with at least one non-empty view
        finals = [empty_mesh() for _ in counts]
        n_eval = [int(sum(n_view[bounds[i]:bounds[i + 1]])) for i in range(len(counts))]
        if objects:
            t = time.perf_counter()
            order = [v for i in objects for v in usable[i]]
            codes2 = self._point_codes([clouds[v] for v in order])
            evaluate = mean_over_views(self._eval_fn(2, codes2), [len(usable[i]) for i in objects])
            meshes2, n2 = self.extract_field(evaluate, len(objects))
            for i, mesh, n in zip(objects, meshes2, n2):
                finals[i] = self._finish(mesh)
                n_eval[i] += n
            timings["stage2"] = time.perf_counter() - t
        groups1 = [per_view[bounds[i]:bounds[i + 1]] for i in range(len(counts))]
        meshes1 = [g[0] if len(g) == 1 else trimesh.util.concatenate(list(g)) for g in groups1]
        points = [np.concatenate([clouds[v] for v in views]) if views else None for views in usable]
        return self._package(finals, meshes1, points, n_eval, timings, start)
