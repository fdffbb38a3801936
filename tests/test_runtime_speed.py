"""CPU runtime: threads without spinning, lazy CLI imports, chunked decoding, bf16 kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_models import make_checkpoint, randomise_weights
from recon_cli.runtime import threads as rt_threads
from recon_cli.runtime.decoder_kernel import DecoderKernel, fused_linear_available, native_bf16, resolve_precision
from recon_cli.runtime.parallel import ChunkPool, map_chunks
from recon_cli.runtime.torch_backend import TorchBackend

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "trimesh", "numpy", "scipy", "PIL", "onnxruntime")


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OMP_NUM_THREADS")}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("argv", [["--help"], ["reconstruct", "--help"], ["reconstruct"], ["eval", "--bogus"],
                                  ["export-onnx"], ["reconstruct", "a.png", "--threads", "0"]])
def test_help_and_usage_errors_load_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\nfrom recon_cli.cli.app import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print('\\nRESULT', code, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    proc = _python(code)
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("RESULT"), proc.stdout + proc.stderr
    status, loaded = line.split(" ", 2)[1:]
    assert status in ("0", "2"), proc.stdout + proc.stderr
    assert loaded == "[]", f"{argv} imported {loaded}"


def test_importing_recon_sets_a_passive_wait_policy_before_torch_unless_the_user_chose() -> None:
    code = "import os, recon_cli, torch\nprint(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('KMP_BLOCKTIME'))"
    assert _python(code).stdout.split() == ["PASSIVE", "0"]
    assert _python(code, {"OMP_WAIT_POLICY": "ACTIVE"}).stdout.split() == ["ACTIVE", "0"]


def test_threads_option_sets_openmp_threads_before_torch_loads() -> None:
    code = ("from recon_cli.cli.options import use_threads\nimport os\nn = use_threads(None)\nimport torch\n"
            "print(n, os.environ['OMP_NUM_THREADS'], torch.get_num_threads())")
    n, env, torch_threads = _python(code, {"RECON_THREADS": "3"}).stdout.split()
    assert (n, env, torch_threads) == ("3", "1", "1")  # 3 decoder workers, each single-threaded


def test_default_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_THREADS", "5")
    assert rt_threads.default_threads() == 5
    monkeypatch.setenv("RECON_THREADS", "zero")
    assert rt_threads.default_threads() == min(2, rt_threads.available_cores())
    monkeypatch.delenv("RECON_THREADS")
    assert 1 <= rt_threads.default_threads() <= 2
    with pytest.raises(ValueError):
        rt_threads.set_threads(0)


def test_torch_threads_context_restores_the_count() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with rt_threads.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_chunk_pool_keeps_task_order_and_map_chunks_never_mixes_shapes() -> None:
    with ChunkPool(3) as pool:
        assert pool.map(lambda x: x * x, list(range(50))) == [x * x for x in range(50)]
        rng = np.random.default_rng(0)
        queries = [rng.standard_normal((n, 3)).astype(np.float32) for n in (0, 5, 23, 7)]
        seen: list[tuple[int, int]] = []

        def run(i: int, chunk: np.ndarray) -> np.ndarray:
            seen.append((i, len(chunk)))
            return chunk.sum(1) + i

        out = map_chunks(pool, queries, 8, run)
    assert [o.shape for o in out] == [(0,), (5,), (23,), (7,)]
    for i, (q, o) in enumerate(zip(queries, out)):
        assert np.allclose(o, q.sum(1) + i)
    assert sorted(seen) == sorted([(1, 5), (2, 8), (2, 8), (2, 7), (3, 7)])


@pytest.fixture(scope="module")
def scrambled(tmp_path_factory: pytest.TempPathFactory) -> DOccNetLike:
    path = make_checkpoint(tmp_path_factory.mktemp("ck") / "d.pt", "doccnet", small=True)
    backend = TorchBackend.from_checkpoint(path, threads=1)
    randomise_weights(backend.model, seed=3)
    return backend.model


DOccNetLike = torch.nn.Module


def _queries(seed: int, sizes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.55, 0.55, (n, 3)).astype(np.float32) for n in sizes]


def test_decode_many_float32_is_the_models_decoder_bit_for_bit(scrambled: torch.nn.Module) -> None:
    backend = TorchBackend(scrambled, threads=3, precision="float32")
    queries = _queries(0, (300, 0, 65, 1))
    codes = torch.randn(4, scrambled.config.decoder1.c_dim, generator=torch.Generator().manual_seed(0))
    out = backend.decode_many(1, queries, codes)
    for q, c, o in zip(queries, codes, out):
        with torch.inference_mode():
            ref = scrambled.stage(1).decode(torch.from_numpy(q)[None], c[None])[0].numpy() if len(q) else np.zeros(0)
        assert o.dtype == np.float32 and o.shape == (len(q),)
        assert np.array_equal(o, ref)
    # with chunks smaller than the point sets: a shape's logits depend neither on the other
    # shapes in the batch nor on the thread count (and stay within rounding of the model's)
    backend.cpu_chunk = 64
    batched = backend.decode_many(1, queries, codes)
    alone = TorchBackend(scrambled, threads=1, precision="float32")
    alone.cpu_chunk = 64
    (solo,) = alone.decode_many(1, [queries[0]], codes[:1])
    assert np.array_equal(solo, batched[0])
    assert np.allclose(batched[0], out[0], rtol=1e-5, atol=1e-5)
    backend.close()


@pytest.mark.parametrize("fused", [True, False])
def test_bfloat16_kernel_is_close_to_float32(scrambled: torch.nn.Module, fused: bool) -> None:
    decoder = scrambled.stage(2).decoder
    if fused and not fused_linear_available():
        pytest.skip("torch has no fused oneDNN linear here")
    kernel = DecoderKernel(decoder, "bfloat16")
    kernel.fused = fused and kernel.fused
    ref_kernel = DecoderKernel(decoder, "float32")
    codes = torch.randn(2, scrambled.config.decoder2.c_dim, generator=torch.Generator().manual_seed(1))
    points = torch.from_numpy(_queries(1, (500,))[0])
    for p_bf, p_fp in zip(kernel.prepare(codes), ref_kernel.prepare(codes)):
        got, ref = kernel.run(p_bf, points), ref_kernel.run(p_fp, points)
        assert got.dtype == torch.float32 and got.shape == (500,)
        scale = float(ref.abs().max())
        assert float((got - ref).abs().max()) < 0.05 * scale + 0.05
        assert not torch.equal(got, ref)  # really computed in bf16


def test_resolve_precision() -> None:
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    assert resolve_precision("mixed") == "mixed"
    assert resolve_precision("auto", "cuda") == "float32"
    assert resolve_precision("auto") == ("mixed" if native_bf16() else "float32")
    with pytest.raises(ValueError):
        resolve_precision("fp8")


def test_bfloat16_kernel_keeps_the_query_coordinates_in_float32(scrambled: torch.nn.Module) -> None:
    """Points closer than bf16 can tell apart (x in [0.5, 0.55), moved by 0.0015 < half its bf16 step) still differ."""
    kernel = DecoderKernel(scrambled.stage(2).decoder, "bfloat16")
    (params,) = kernel.prepare(torch.randn(1, scrambled.config.decoder2.c_dim, generator=torch.Generator().manual_seed(6)))
    points = torch.from_numpy(_queries(6, (200,))[0])
    points[:, 0] = torch.linspace(0.5, 0.545, 200)
    points = points.to(torch.bfloat16).float()  # representable in bf16
    moved = points.clone()
    moved[:, 0] += 0.0015
    assert torch.equal(moved.to(torch.bfloat16).float(), points)  # the same points once rounded to bf16
    assert not torch.equal(kernel.run(params, points), kernel.run(params, moved))


def test_mixed_precision_redoes_the_band_around_the_level_in_float32(scrambled: torch.nn.Module) -> None:
    from recon_cli.runtime.torch_backend import MIXED_BAND

    queries = _queries(4, (3000, 0, 700))
    codes = torch.randn(3, scrambled.config.decoder2.c_dim, generator=torch.Generator().manual_seed(4))
    exact = TorchBackend(scrambled, threads=2, precision="float32").decode_many(2, queries, codes)
    rough = TorchBackend(scrambled, threads=2, precision="bfloat16").decode_many(2, queries, codes)
    mixed = TorchBackend(scrambled, threads=2, precision="mixed")
    # without a level (an intermediate mesh, raw logits) mixed is float32, bit for bit
    for got, want in zip(mixed.decode_many(2, queries, codes), exact):
        assert np.array_equal(got, want)
    level = float(np.median(exact[0]))  # a level through the middle of the values: a wide band
    got = mixed.decode_many(2, queries, codes, level=level)
    for g, e, r in zip(got, exact, rough):
        band = np.abs(r - level) < MIXED_BAND
        assert np.allclose(g[band], e[band], rtol=1e-5, atol=1e-5)  # float32 (chunked differently)
        assert np.array_equal(g[~band], r[~band])  # bfloat16 elsewhere
    assert (np.abs(rough[0] - level) < MIXED_BAND).sum() > 10
    assert not np.array_equal(got[0], exact[0])
    mixed.close()


def test_mixed_reconstruction_matches_float32_at_both_stages(tmp_path: Path) -> None:
    """Both MISE extractions are banded; vertices come from float32 values, so the stage-1 mesh, the
    300 points sampled from it (seeded by the image) and the final mesh match the float32 ones."""
    from recon_cli.pipeline import ExtractOptions, Reconstructor

    path = make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    out = {}
    levels: list[tuple[int, float | None]] = []
    for precision in ("float32", "mixed"):
        backend = TorchBackend.from_checkpoint(path, threads=1, precision=precision)
        real = backend.decode_many

        def spy(stage, queries, codes, *, level=None, fast=False, _real=real):  # noqa: ANN001, ANN202
            levels.append((stage, level))
            return _real(stage, queries, codes, level=level, fast=fast)

        backend.decode_many = spy
        rec = Reconstructor(backend, options=ExtractOptions(resolution0=8, upsampling_steps=2))
        (out[precision],) = rec.reconstruct_images(image)
        backend.close()
    for stage in (1, 2):  # MISE rounds give the level; the float32 corner pass does not
        assert any(lv is not None for st, lv in levels if st == stage)
        assert any(lv is None for st, lv in levels if st == stage)
    f32, mixed = out["float32"], out["mixed"]
    assert np.array_equal(f32.stage1_mesh.faces, mixed.stage1_mesh.faces)
    assert np.abs(np.asarray(f32.stage1_mesh.vertices) - np.asarray(mixed.stage1_mesh.vertices)).max() < 1e-5
    assert np.abs(f32.points - mixed.points).max() < 1e-4
    assert np.array_equal(f32.mesh.faces, mixed.mesh.faces)
    assert np.abs(np.asarray(f32.mesh.vertices) - np.asarray(mixed.mesh.vertices)).max() < 1e-4


def test_mixed_blend_matches_float32(tmp_path: Path) -> None:
    from recon_cli.pipeline import ExtractOptions, Reconstructor

    path = make_checkpoint(tmp_path / "d.pt", "doccnet", small=True, nonempty=True)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    out = {}
    for precision in ("float32", "mixed"):
        backend = TorchBackend.from_checkpoint(path, threads=1, precision=precision)
        rec = Reconstructor(backend, options=ExtractOptions(resolution0=8, upsampling_steps=2), stages="blend")
        (out[precision],) = rec.reconstruct_images(image)
        backend.close()
    f32, mixed = out["float32"], out["mixed"]
    assert len(f32.mesh.faces) > 0 and np.array_equal(f32.mesh.faces, mixed.mesh.faces)
    assert np.abs(np.asarray(f32.mesh.vertices) - np.asarray(mixed.mesh.vertices)).max() < 1e-4


def test_onnx_decode_many_matches_torch(scrambled: torch.nn.Module, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from recon_cli.runtime.onnx_backend import OnnxBackend
    from recon_cli.runtime.onnx_export import export_onnx

    export_onnx(scrambled, tmp_path / "onnx")
    ort = OnnxBackend(tmp_path / "onnx", device="cpu", threads=2)
    ort.cpu_chunk = 50
    queries = _queries(2, (120, 0, 7))
    codes = torch.randn(3, scrambled.config.decoder2.c_dim)
    ref = TorchBackend(scrambled, threads=1).decode_many(2, queries, codes)
    for got, want in zip(ort.decode_many(2, queries, codes), ref):
        assert got.shape == want.shape and np.allclose(got, want, atol=1e-4)
    ort.close()


def test_cli_threads_and_precision_reach_the_run(tmp_path: Path) -> None:
    """Same photos, same meshes (bytes) on 1 or 2 threads (2: two reconstructions in flight)."""
    from PIL import Image
    from typer.testing import CliRunner

    from recon_cli.cli.app import app

    weights = make_checkpoint(tmp_path / "w.pt", "doccnet", small=True, nonempty=True)
    for i in range(3):
        photo = np.full((60, 80, 3), 128, np.uint8)
        photo[15 + 2 * i : 45, 25 : 55 - 3 * i] = (200, 40 + 40 * i, 40)
        Image.fromarray(photo).save(tmp_path / f"a{i}.png")
    runner = CliRunner()
    meshes = {}
    for precision, threads in (("float32", "1"), ("float32", "2"), ("bfloat16", "2")):
        out = tmp_path / f"{precision}-{threads}"
        res = runner.invoke(app, ["reconstruct", *(str(tmp_path / f"a{i}.png") for i in range(3)), "--out-dir",
                                  str(out), "--weights", str(weights), "--quality", "draft", "--threads", threads,
                                  "--precision", precision, "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["summary"]["ok"] == 3
        meshes[precision, threads] = [(out / f"a{i}.obj").read_bytes() for i in range(3)]
    assert meshes["float32", "1"] == meshes["float32", "2"]  # the thread count never changes a mesh


@pytest.mark.parametrize("threads", [1, 2])
def test_batches_are_pipelined_and_results_stay_in_input_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               threads: int) -> None:
    """Writing a batch's meshes overlaps the next batch's network work; order and per-file errors hold."""
    import threading
    import time

    from PIL import Image

    import recon_cli.reconstruct as rmod

    weights = make_checkpoint(tmp_path / "w.pt", "doccnet", small=True, nonempty=True)
    photos = []
    for i in range(4):
        arr = np.full((60, 80, 3), 128, np.uint8)
        arr[15:45, 20 + i : 50 + i] = (200, 40 + 30 * i, 40)
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(arr).save(photos[-1])
    (tmp_path / "p2.png").write_bytes(b"not an image")  # fails while preparing, by name
    events: list[tuple[str, str, str]] = []
    real_write, real_reconstruct = rmod._write, rmod._reconstruct

    def slow_write(p, r, opts):  # noqa: ANN001, ANN202
        events.append(("write-start", p.job.input.name, threading.current_thread().name))
        time.sleep(0.3)
        real_write(p, r, opts)
        events.append(("write-end", p.job.input.name, threading.current_thread().name))

    def reconstruct(rec, ready, *, is_points):  # noqa: ANN001, ANN202
        names = ",".join(p.job.input.name for p in ready)
        events.append(("net-start", names, threading.current_thread().name))
        out = real_reconstruct(rec, ready, is_points=is_points)
        time.sleep(0.2)
        events.append(("net-end", names, threading.current_thread().name))
        return out

    monkeypatch.setattr(rmod, "_write", slow_write)
    monkeypatch.setattr(rmod, "_reconstruct", reconstruct)
    seen: list[str] = []
    report = rmod.reconstruct_files(
        [str(p) for p in photos], out_dir=tmp_path / "out",
        options=rmod.ReconstructOptions(weights=weights, resolution=8, upsampling_steps=1, device="cpu",
                                        threads=threads),
        on_result=lambda r: seen.append(Path(r.input).name))
    assert seen == ["p0.png", "p1.png", "p2.png", "p3.png"]  # input order, as each finishes
    assert [Path(r.input).name for r in report.results] == seen
    assert [r.ok for r in report.results] == [True, True, False, True] and "p2.png" in report.results[2].error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.obj", "p1.obj", "p3.obj"]  # no temp files
    # batch size 1 on the CPU: the network started on p1 before p0's mesh was written, on another thread
    names = [e[:2] for e in events]
    assert names.index(("net-start", "p1.png")) < names.index(("write-end", "p0.png"))
    assert not {e[2] for e in events if e[0] == "write-start"} & {e[2] for e in events if e[0] == "net-start"}
    if threads == 2:  # two reconstructions in flight: p1 starts before p0 is done
        assert names.index(("net-start", "p1.png")) < names.index(("net-end", "p0.png"))
    else:
        assert names.index(("net-end", "p0.png")) < names.index(("net-start", "p1.png"))
