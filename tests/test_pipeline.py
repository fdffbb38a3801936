"""Reconstructor end to end on tiny random models; options; input point sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from helpers_models import BLOB_RADIUS, make_checkpoint
from recon_cli.errors import InputError
from recon_cli.pipeline import (
    QUALITY_PRESETS,
    ExtractOptions,
    Reconstruction,
    Reconstructor,
    farthest_point_sampling,
    sample_input_points,
)
from recon_cli.runtime.base import Backend
from recon_cli.runtime.torch_backend import TorchBackend

FAST = ExtractOptions(resolution0=16, upsampling_steps=1)


@pytest.fixture(scope="module")
def blob_backend(tmp_path_factory: pytest.TempPathFactory) -> TorchBackend:
    path = make_checkpoint(tmp_path_factory.mktemp("ck") / "blob.pt", "doccnet", nonempty=True)
    return TorchBackend.from_checkpoint(path)


def test_backend_protocol(blob_backend: TorchBackend) -> None:
    assert isinstance(blob_backend, Backend)
    assert blob_backend.has_stage1 and blob_backend.has_stage2
    assert blob_backend.image_size == 64 and blob_backend.n_input_points == 300


def test_doccnet_blob_end_to_end(blob_backend: TorchBackend) -> None:
    recs = Reconstructor(blob_backend, options=FAST).reconstruct_images(torch.rand(2, 3, 64, 64))
    assert len(recs) == 2
    for rec in recs:
        assert isinstance(rec, Reconstruction)
        assert rec.mesh.is_watertight and len(rec.mesh.faces) > 100
        assert rec.stage1_mesh is not None and rec.stage1_mesh.is_watertight
        assert rec.points.shape == (300, 3)
        radii = np.linalg.norm(rec.mesh.vertices, axis=1)
        assert BLOB_RADIUS - 0.05 < radii.min() and radii.max() < BLOB_RADIUS + 0.1
        assert set(rec.timings) == {"encode", "stage1", "sample", "stage2"}
        assert rec.seconds > 0 and rec.n_evaluated > 17**3 * 2


def test_stage1_only_and_simplify(blob_backend: TorchBackend) -> None:
    opts = ExtractOptions(resolution0=16, upsampling_steps=1, simplify_faces=200)
    (rec,) = Reconstructor(blob_backend, options=opts, stages="1").reconstruct_images(torch.rand(1, 3, 64, 64))
    assert rec.stage1_mesh is None and rec.points is None
    assert 0 < len(rec.mesh.faces) <= 200


def test_reconstruct_points(blob_backend: TorchBackend) -> None:
    rng = np.random.default_rng(0)
    clouds = [rng.uniform(-0.3, 0.3, (1000, 3)), rng.uniform(-0.3, 0.3, (50, 3))]
    recs = Reconstructor(blob_backend, options=FAST).reconstruct_points(clouds)
    assert [r.points.shape for r in recs] == [(300, 3), (300, 3)]
    assert all(r.mesh.is_watertight for r in recs)
    with pytest.raises(InputError, match="empty"):
        Reconstructor(blob_backend, options=FAST).reconstruct_points([np.zeros((0, 3))])


@pytest.mark.parametrize("name", ["onet", "onet-pcl", "doccnet"])
def test_random_models_never_raise(tmp_path: Path, name: str) -> None:
    backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "r.pt", name, seed=3))
    rec = Reconstructor(backend, options=ExtractOptions(resolution0=8, upsampling_steps=1))
    outs = rec.reconstruct_images(torch.rand(2, 3, 64, 64)) if name != "onet-pcl" else rec.reconstruct_points(
        [np.random.default_rng(0).uniform(-0.5, 0.5, (300, 3))]
    )
    for out in outs:
        assert isinstance(out.mesh, trimesh.Trimesh)
        assert len(out.mesh.faces) == 0 or out.mesh.is_watertight


def test_empty_stage1_gives_empty_reconstruction(tmp_path: Path) -> None:
    backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "e.pt", "doccnet", nonempty=True))
    with torch.no_grad():
        backend.model.stage1.decoder.fc_out.bias.fill_(-100.0)  # nothing is inside
    (rec,) = Reconstructor(backend, options=FAST).reconstruct_images(torch.rand(1, 3, 64, 64))
    assert rec.empty and len(rec.mesh.faces) == 0 and len(rec.stage1_mesh.faces) == 0
    assert rec.points is None and rec.n_evaluated == 17**3 + 33**3  # MISE, then the dense retry of an empty field


def test_wrong_inputs_for_model(tmp_path: Path) -> None:
    onet = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "o.pt", "onet"))
    pcl = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "p.pt", "onet-pcl"))
    with pytest.raises(InputError, match="no point-cloud stage"):
        Reconstructor(onet).reconstruct_points([np.zeros((10, 3))])
    with pytest.raises(InputError, match="no image stage"):
        Reconstructor(pcl).reconstruct_images(torch.rand(1, 3, 64, 64))
    with pytest.raises(InputError, match="no point-cloud stage"):
        Reconstructor(onet, stages="1+2", options=FAST).reconstruct_images(torch.rand(1, 3, 64, 64))
    with pytest.raises(InputError, match="unknown stages"):
        Reconstructor(onet, stages="3")
    with pytest.raises(InputError, match="float RGB"):
        Reconstructor(onet).reconstruct_images(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(InputError, match="shape"):
        Reconstructor(onet).reconstruct_images(torch.zeros(3, 64, 64))


def test_options_validation_and_presets() -> None:
    assert QUALITY_PRESETS == {"draft": (32, 1), "standard": (32, 2), "high": (32, 3)}
    assert ExtractOptions().level == pytest.approx(np.log(0.25))
    for bad in ({"threshold": 0.0}, {"threshold": 1.5}, {"mc_backend": "gpu"}, {"upsampling_steps": -1}, {"simplify_faces": 2}):
        with pytest.raises(InputError):
            ExtractOptions(**bad)


def test_batched_matches_single(blob_backend: TorchBackend) -> None:
    images = torch.rand(3, 3, 64, 64)
    rec = Reconstructor(blob_backend, options=FAST, stages="1")
    batched = rec.reconstruct_images(images)
    single = rec.reconstruct_images(images[1:2])[0]
    assert np.allclose(batched[1].mesh.vertices, single.mesh.vertices, atol=1e-6)
    assert np.array_equal(batched[1].mesh.faces, single.mesh.faces)


def test_sample_input_points() -> None:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    pts = sample_input_points(mesh, 300, np.random.default_rng(0))
    assert pts.shape == (300, 3) and pts.dtype == np.float32
    assert np.allclose(np.linalg.norm(pts, axis=1), 0.4, atol=5e-3)
    again = sample_input_points(mesh, 300, np.random.default_rng(0))
    assert np.array_equal(pts, again)  # seeded
    # farthest-point sampling spreads points: min pairwise distance well above random sampling's
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(300)
    assert d.min() > 0.03
    assert sample_input_points(trimesh.Trimesh(), 300).shape == (0, 3)


def test_input_points_follow_a_mesh_that_moves_by_rounding() -> None:
    """The same random numbers on a mesh whose vertices moved in their last bits (another backend or
    precision) give the same points to within that motion, so stage 2 sees the same cloud."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    moved = trimesh.Trimesh(np.asarray(mesh.vertices) * (1 + 1e-6 * np.random.default_rng(3).standard_normal(
        (len(mesh.vertices), 1))), mesh.faces, process=False)
    a = sample_input_points(mesh, 300, np.random.default_rng(7))
    b = sample_input_points(moved, 300, np.random.default_rng(7))
    assert np.abs(a - b).max() < 1e-5


def test_input_points_are_seeded_by_the_image(blob_backend: TorchBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two images with the same stage-1 mesh get different draws; the same image the same one."""
    import recon_cli.pipeline as pipeline

    rec = Reconstructor(blob_backend, options=FAST)
    fixed = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    monkeypatch.setattr(rec, "extract_known", lambda stage, codes, **kw: (
        ([fixed] * len(codes), [1] * len(codes), None) if stage == 1
        else pipeline.Reconstructor.extract_known(rec, stage, codes, **kw)))
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    first, second = rec.reconstruct_images(images)
    assert not np.array_equal(first.points, second.points)
    (again,) = rec.reconstruct_images(images[1:])
    assert np.array_equal(again.points, second.points)


def test_blend_cuts_the_weighted_sum_of_both_stages_logits(tmp_path: Path) -> None:
    from recon_cli.pipeline import BLEND_STAGE1_WEIGHT

    blob_backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True),
                                                threads=1)
    with torch.no_grad():  # stage 2's blob a size larger than stage 1's, so that the blend is neither
        blob_backend.model.stage2.decoder.fc_out.bias += 2.0
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    rec = Reconstructor(blob_backend, options=FAST, stages="blend")
    (got,) = rec.reconstruct_images(image)
    (chain,) = Reconstructor(blob_backend, options=FAST, stages="1+2").reconstruct_images(image)
    assert np.array_equal(got.points, chain.points)  # the same chain up to the final field
    code1 = blob_backend.encode_image(image)
    code2 = blob_backend.encode_points(torch.from_numpy(got.points)[None])
    w = BLEND_STAGE1_WEIGHT

    def field(queries):  # the blend, by the plain decoders
        out = []
        for q in queries:
            pts = torch.from_numpy(np.asarray(q, np.float32))[None]
            out.append((w * blob_backend.decode(1, pts, code1) + (1 - w) * blob_backend.decode(2, pts, code2))[0].numpy())
        return out

    (want,), _ = rec.extract_field(field, 1)
    assert len(got.mesh.faces) > 0 and np.array_equal(got.mesh.faces, want.faces)
    assert np.allclose(got.mesh.vertices, want.vertices, atol=1e-5)
    assert len(got.mesh.faces) != len(chain.mesh.faces) or not np.allclose(got.mesh.vertices, chain.mesh.vertices)


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_the_blend_reuses_stage_1_values_without_changing_the_mesh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    precision: str) -> None:
    """The blend's MISE takes stage 1's values at the lattice points the stage-1 extraction evaluated
    (its lattice holds the stage-1 one): the same mesh, with fewer stage-1 points decoded."""
    import recon_cli.pipeline as pipeline
    from recon_cli.runtime.decoder_kernel import resolve_precision

    if precision == "mixed" and resolve_precision("auto") != "mixed":
        pytest.skip("no native bfloat16 on this CPU")
    backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True),
                                           threads=1, precision=precision)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    options = ExtractOptions(resolution0=16, upsampling_steps=2)
    decoded = {True: 0, False: 0}
    original = backend.decode_many

    def counting(stage: int, queries: list, codes: torch.Tensor, **kw: object) -> list:
        if stage == 1:
            decoded[reuse] += sum(len(q) for q in queries)
        return original(stage, queries, codes, **kw)

    monkeypatch.setattr(backend, "decode_many", counting)
    meshes = {}
    for reuse in (True, False):
        if not reuse:
            monkeypatch.setattr(pipeline, "_reusing", lambda evaluate, known, exact: evaluate)
        (meshes[reuse],) = Reconstructor(backend, options=options, stages="blend").reconstruct_images(image)
    assert len(meshes[True].mesh.faces) > 0
    assert np.array_equal(meshes[True].mesh.faces, meshes[False].mesh.faces)
    assert np.allclose(meshes[True].mesh.vertices, meshes[False].mesh.vertices, atol=1e-6)
    assert decoded[True] < 0.8 * decoded[False]


def test_known_values_look_up_lattice_points_only() -> None:
    from recon_cli.extract.grid import index_to_world
    from recon_cli.extract.mise import MiseResult
    from recon_cli.pipeline import KnownValues

    values = np.arange(5**3, dtype=np.float32).reshape(5, 5, 5)
    known = np.zeros((5, 5, 5), bool)
    known[1, 2, 3] = known[4, 4, 4] = True
    cache = KnownValues(MiseResult(values, 2, 1, known), 4, 0.1)
    points = index_to_world(np.array([[1, 2, 3], [4, 4, 4], [0, 0, 0], [1, 2, 3.5], [2, 4, 6]]), 4, padding=0.1)
    hit, got = cache.lookup(points.astype(np.float32), exact=True)
    assert hit.tolist() == [True, True, False, False, False]  # unknown, between lattice points, outside
    assert got.tolist() == [values[1, 2, 3], values[4, 4, 4]]
    mixed = KnownValues(MiseResult(values, 2, 1, known), 4, 0.1, level=float(values[1, 2, 3]) + 0.05)
    hit, _ = mixed.lookup(points.astype(np.float32), exact=True)  # only values near the level were float32
    assert hit.tolist() == [True, False, False, False, False]
    assert mixed.lookup(points.astype(np.float32), exact=False)[0].tolist() == [True, True, False, False, False]


def test_a_part_between_the_start_lattice_points_is_extracted_again_finer(blob_backend: TorchBackend) -> None:
    """MISE subdivides only voxels whose known corners straddle the level: a small ball between the
    start lattice's points is never seen. An empty result is extracted again from a start lattice
    twice as fine (the same final lattice), which finds it; a field with a surface is not redone."""
    from recon_cli.extract.grid import box_size
    from recon_cli.extract.mise import mise

    options = ExtractOptions(resolution0=8, upsampling_steps=2)  # start spacing 1.1 / 8
    centre = np.full(3, 0.5 * box_size(options.padding) / 8, np.float32)  # the middle of a start voxel
    radius = 0.04
    calls = []

    def ball(queries):
        calls.append(sum(len(q) for q in queries))
        return [(radius - np.linalg.norm(np.asarray(q) - centre, axis=1)).astype(np.float32) * 50 for q in queries]

    level = options.level
    coarse = mise(lambda q: ball([q])[0], 8, 2, level, padding=options.padding)
    assert not (coarse.values > level).any()  # what plain MISE gives: nothing
    rec = Reconstructor(blob_backend, options=options)
    calls.clear()
    (mesh,), (n,) = rec.extract_field(ball, 1)
    assert len(mesh.faces) > 0 and np.allclose(mesh.vertices.mean(axis=0), centre, atol=0.01)
    assert n == sum(calls) > 17**3  # both extractions counted
    calls.clear()
    big = lambda queries: [(0.3 - np.linalg.norm(np.asarray(q), axis=1)).astype(np.float32) for q in queries]
    (_,), (n_big,) = rec.extract_field(big, 1)
    assert n_big == mise(lambda q: big([q])[0], 8, 2, level, padding=options.padding).n_evaluated


def test_an_empty_blend_falls_back_to_stage_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True),
                                           threads=1)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    (chain,) = Reconstructor(backend, options=FAST, stages="1+2").reconstruct_images(image)
    rec = Reconstructor(backend, options=FAST, stages="blend")
    nothing = (lambda queries: [np.full(len(q), -10.0, np.float32) for q in queries], None)  # a blend with no surface
    monkeypatch.setattr(rec, "_blend_fns", lambda codes1, codes2, known1=None: nothing)
    (got,) = rec.reconstruct_images(image)
    assert len(got.mesh.faces) > 0
    assert np.array_equal(got.mesh.faces, chain.mesh.faces) and np.allclose(got.mesh.vertices, chain.mesh.vertices)


def test_a_blend_and_stage_2_both_empty_fall_back_to_stage_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 2 blind to a thin stage-1 surface must not turn the answer into nothing."""
    backend = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True),
                                           threads=1)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    (alone,) = Reconstructor(backend, options=FAST, stages="1").reconstruct_images(image)
    with torch.no_grad():  # stage 2 sure that everything is empty
        backend.model.stage2.decoder.fc_out.bias -= 100.0
    (chain,) = Reconstructor(backend, options=FAST, stages="1+2").reconstruct_images(image)
    assert len(chain.mesh.faces) == 0
    rec = Reconstructor(backend, options=FAST, stages="blend")
    nothing = (lambda queries: [np.full(len(q), -10.0, np.float32) for q in queries], None)
    monkeypatch.setattr(rec, "_blend_fns", lambda codes1, codes2, known1=None: nothing)
    (got,) = rec.reconstruct_images(image)
    assert len(got.mesh.faces) > 0
    assert np.array_equal(got.mesh.faces, alone.mesh.faces) and np.allclose(got.mesh.vertices, alone.mesh.vertices)


def test_farthest_point_sampling_small() -> None:
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [0.1, 0, 0], [0.5, 0, 0]])
    idx = farthest_point_sampling(pts, 3, np.random.default_rng(1))
    assert sorted(pts[idx, 0].tolist()) == [0.0, 0.5, 1.0]


def test_stage1_mesh_on_coarser_lattice_by_default(blob_backend: TorchBackend) -> None:
    image = torch.rand(1, 3, 64, 64)
    (full,) = Reconstructor(blob_backend, options=ExtractOptions(resolution0=8, upsampling_steps=2)).reconstruct_images(image)
    (coarse,) = Reconstructor(blob_backend, options=ExtractOptions(resolution0=8, upsampling_steps=1), stages="1"
                              ).reconstruct_images(image)
    assert np.allclose(full.stage1_mesh.vertices, coarse.mesh.vertices) and np.array_equal(
        full.stage1_mesh.faces, coarse.mesh.faces)  # stage 1 used 8 + 1 steps
    same = ExtractOptions(resolution0=8, upsampling_steps=2, stage1_upsampling_steps=None)
    (fine,) = Reconstructor(blob_backend, options=same).reconstruct_images(image)
    assert len(fine.stage1_mesh.faces) > len(full.stage1_mesh.faces)


@pytest.mark.gpu
def test_cuda_matches_cpu(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "g.pt", "doccnet", nonempty=True)
    image = torch.rand(2, 3, 64, 64)
    cpu = Reconstructor(TorchBackend.from_checkpoint(path), options=FAST).reconstruct_images(image)
    gpu = Reconstructor(TorchBackend.from_checkpoint(path, device="cuda"), options=FAST).reconstruct_images(image)
    for a, b in zip(cpu, gpu):  # torch marching cubes on CUDA, PyMCubes on the CPU
        assert (len(a.mesh.vertices), len(a.mesh.faces)) == (len(b.mesh.vertices), len(b.mesh.faces))
        va, vb = np.asarray(a.mesh.vertices), np.asarray(b.mesh.vertices)
        assert np.abs(va[np.lexsort(va.T)] - vb[np.lexsort(vb.T)]).max() < 1e-4
