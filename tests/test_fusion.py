"""Multi-view fusion on a fake backend whose shape is known from the image (a sphere per brightness)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon_cli.errors import InputError
from recon_cli.fusion import FUSION_STRATEGIES, MultiViewReconstructor, mean_over_views, pooled_input_points
from recon_cli.pipeline import ExtractOptions, sample_input_points

FAST = ExtractOptions(resolution0=16, upsampling_steps=1)


class SphereBackend:
    """Image brightness b -> code (b, b); decoders give a sphere of radius ``code[0]`` (logits ~ radius - |x|).

    Stage 2 codes the cloud by its mean distance from the origin, so stage 2 reproduces the sphere the
    points lie on.
    """

    has_stage1 = True
    has_stage2 = True
    device = torch.device("cpu")
    image_size = 8
    n_input_points = 300

    def __init__(self, stage2: bool = True) -> None:
        self.has_stage2 = stage2

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        b = images.mean(dim=(1, 2, 3))
        b = torch.where(b < 0.05, torch.full_like(b, -1.0), b)  # black images: no object at all
        return torch.stack([b, b], dim=1)

    def encode_points(self, points: torch.Tensor) -> torch.Tensor:
        r = points.norm(dim=2).mean(dim=1)
        return torch.stack([r, r], dim=1)

    def decode(self, stage: int, points: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return 40.0 * (c[:, None, 0] - points.norm(dim=2))


def views(*brightness: float) -> torch.Tensor:
    return torch.stack([torch.full((3, 8, 8), b) for b in brightness])


def mean_radius(mesh) -> float:
    """Mean vertex radius minus the offset of the surface threshold (logit level / 40 outside the code)."""
    return float(np.linalg.norm(mesh.vertices, axis=1).mean()) + FAST.level / 40.0


@pytest.mark.parametrize("fusion", FUSION_STRATEGIES)
def test_one_view_equals_single_view(fusion: str) -> None:
    rec = MultiViewReconstructor(SphereBackend(), options=FAST)
    single = rec.reconstruct_images(views(0.3, 0.4))
    fused = rec.reconstruct_views([views(0.3), views(0.4)], fusion=fusion)
    for a, b in zip(single, fused):
        np.testing.assert_allclose(a.mesh.vertices, b.mesh.vertices)
        np.testing.assert_allclose(a.points, b.points)


@pytest.mark.parametrize("fusion", FUSION_STRATEGIES)
def test_fused_shape_lies_between_the_views(fusion: str) -> None:
    rec = MultiViewReconstructor(SphereBackend(), options=FAST, stages="1+2")
    small, big = (mean_radius(r.mesh) for r in rec.reconstruct_images(views(0.2, 0.4)))
    (fused,) = rec.reconstruct_views([views(0.2, 0.4)], fusion=fusion)
    assert small + 0.02 < mean_radius(fused.mesh) < big - 0.02 or fusion in ("cloud", "chain")
    if fusion == "chain":  # the mean of two stage-2 spheres' logits: a sphere in between
        assert small + 0.02 < mean_radius(fused.mesh) < big - 0.02 and fused.points.shape == (600, 3)
    elif fusion == "cloud":  # pooled points of both spheres: mean distance between the radii
        assert 0.2 < np.linalg.norm(fused.points, axis=1).mean() < 0.4
        assert len(fused.stage1_mesh.faces) > 1.5 * len(rec.reconstruct_images(views(0.2))[0].stage1_mesh.faces)
    else:  # averaging two spheres' logits or codes gives the sphere of the mean brightness
        ref = mean_radius(rec.reconstruct_images(views(0.3))[0].mesh)
        assert abs(mean_radius(fused.mesh) - ref) < 0.01


def test_batches_of_objects_with_different_view_counts() -> None:
    rec = MultiViewReconstructor(SphereBackend(stage2=False), options=FAST)
    out = rec.reconstruct_views([views(0.2, 0.4, 0.3), views(0.25)], fusion="logits")
    assert len(out) == 2 and out[0].points is None
    assert abs(mean_radius(out[0].mesh) - 0.3) < 0.03 and abs(mean_radius(out[1].mesh) - 0.25) < 0.03


def test_errors() -> None:
    rec = MultiViewReconstructor(SphereBackend(stage2=False), options=FAST)
    with pytest.raises(InputError, match="unknown fusion"):
        rec.reconstruct_views([views(0.3)], fusion="max")
    for fusion in ("cloud", "chain"):
        with pytest.raises(InputError, match=f"{fusion} fusion works on stage 2"):
            rec.reconstruct_views([views(0.3, 0.2)], fusion=fusion)
    with pytest.raises(InputError, match="shape"):
        rec.reconstruct_views([torch.rand(3, 8, 8)])
    assert rec.reconstruct_views([]) == []


def test_mean_over_views_and_pooled_points() -> None:
    calls = []

    def evaluate(queries):
        calls.append(len(queries))
        return [np.full(len(q), float(i)) for i, q in enumerate(queries)]

    fused = mean_over_views(evaluate, [2, 1])
    out = fused([np.zeros((5, 3), np.float32), np.zeros((3, 3), np.float32)])
    assert calls == [3]
    np.testing.assert_allclose(out[0], 0.5) and np.testing.assert_allclose(out[1], 2.0)
    import trimesh

    a = trimesh.creation.icosphere(radius=0.2)
    b = trimesh.creation.icosphere(radius=0.4)
    np.testing.assert_allclose(pooled_input_points([a], 300, np.random.default_rng(1)),
                               sample_input_points(a, 300, np.random.default_rng(1)))
    pts = pooled_input_points([a, b], 300, np.random.default_rng(1))
    r = np.linalg.norm(pts, axis=1)
    assert pts.shape == (300, 3) and (r < 0.25).sum() > 30 and (r > 0.35).sum() > 100


def test_chain_skips_views_whose_stage1_is_empty() -> None:
    rec = MultiViewReconstructor(SphereBackend(), options=FAST)
    (alone,) = rec.reconstruct_images(views(0.3))
    (fused,) = rec.reconstruct_views([views(0.0, 0.3)], fusion="chain")  # brightness 0: radius 0, no surface
    np.testing.assert_allclose(fused.mesh.vertices, alone.mesh.vertices)
    assert fused.points.shape == (300, 3)
    (nothing,) = rec.reconstruct_views([views(0.0, 0.0)], fusion="chain")
    assert nothing.empty and nothing.points is None
