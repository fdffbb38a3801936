"""Issue 16: no silent garbage, no tracebacks, same input same mesh (one test per item of the issue)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_models import make_checkpoint
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app

runner = CliRunner()
FAST = ["--quality", "draft", "--resolution", "16", "--device", "cpu"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _photo(path: Path, colour: tuple[int, int, int] = (200, 40, 40)) -> Path:
    arr = np.full((60, 80, 3), 128, np.uint8)
    arr[15:45, 25:55] = colour
    Image.fromarray(arr).save(path)
    return path


def assert_one_line_error(result, *needles: str, code: int = 1) -> str:  # noqa: ANN001 - click Result
    """Exit ``code``, no traceback, and one error line on stderr holding every needle."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:") or "Error" in ln]
    assert lines, result.stderr
    line = lines[0] if code == 1 else result.stderr
    for needle in needles:
        assert needle in line, (needle, result.stderr)
    if code == 1:
        assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error:")]) == 1, result.stderr
    return line


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("w") / "doccnet.pt", "doccnet", nonempty=True)


@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recon_cli.io.checkpoint import checkpoint_dict
    from recon_cli.models import build_model, small_model_config

    cfg = small_model_config("doccnet")
    data = checkpoint_dict(build_model(cfg).eval(), cfg)
    key = next(k for k, v in data["state_dict"].items() if v.is_floating_point() and "decoder" in k)
    data["state_dict"][key] = torch.full_like(data["state_dict"][key], float("nan"))
    path = tmp_path_factory.mktemp("nan") / "nan.pt"
    torch.save(data, path)
    return path


# --------------------------------------------------------------------------- 1. non-finite weights and meshes


def test_nan_checkpoint_fails_on_load_with_one_line(tmp_path: Path, nan_weights: Path) -> None:
    from recon_cli.errors import CheckpointError
    from recon_cli.io.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(nan_weights)
    photo = _photo(tmp_path / "a.png")
    result = runner.invoke(app, ["reconstruct", str(photo), "-o", str(tmp_path / "a.obj"), "--weights",
                                 str(nan_weights), *FAST])
    assert_one_line_error(result, "nan.pt", "NaN or infinite")
    assert not (tmp_path / "a.obj").exists()


def test_nan_checkpoint_refused_by_export_onnx_and_eval(tmp_path: Path, nan_weights: Path,
                                                       tiny_dataset: Path) -> None:
    result = runner.invoke(app, ["export-onnx", "--weights", str(nan_weights), "-o", str(tmp_path / "onnx")])
    assert_one_line_error(result, "nan.pt", "NaN or infinite")
    assert not (tmp_path / "onnx").exists()
    result = runner.invoke(app, ["eval", "--data", str(tiny_dataset), "--weights", str(nan_weights), "--limit", "1",
                                 "--quality", "draft", "--device", "cpu", "--out", str(tmp_path / "ev")])
    assert_one_line_error(result, "nan.pt", "NaN or infinite")


def test_export_of_a_nan_model_writes_nothing(tmp_path: Path) -> None:
    from recon_cli.errors import InputError
    from recon_cli.models import build_model, small_model_config
    from recon_cli.runtime.onnx_export import export_onnx

    model = build_model(small_model_config("onet")).eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(InputError, match="NaN or infinite"):
        export_onnx(model, tmp_path / "onnx")
    assert list(tmp_path.iterdir()) == []


def test_meshes_with_non_finite_vertices_are_never_written(tmp_path: Path) -> None:
    import trimesh

    from recon_cli.errors import InputError
    from recon_cli.io.mesh import save_mesh

    mesh = trimesh.creation.box()
    mesh.vertices[3] = [np.nan, 0.0, 0.0]
    for suffix in (".obj", ".ply", ".stl", ".off", ".glb"):
        with pytest.raises(InputError, match="NaN or infinite"):
            save_mesh(mesh, tmp_path / f"m{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_network_producing_nan_fails_that_file_only(tmp_path: Path, weights: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Finite weights can still give NaN (overflow): the file fails by name, nothing is written."""
    from recon_cli.runtime.decoder_kernel import DecoderKernel
    from recon_cli.runtime.torch_backend import TorchBackend

    real, real_run = TorchBackend.decode, DecoderKernel.run

    def decode(self, stage, points, c):  # noqa: ANN001, ANN202
        out = real(self, stage, points, c)
        return out * float("nan") if float(c.abs().sum()) > 0 else out

    def run(self, params, points):  # noqa: ANN001, ANN202 - the CPU hot path (chunked decode_many)
        return real_run(self, params, points) * float("nan")

    monkeypatch.setattr(TorchBackend, "decode", decode)
    monkeypatch.setattr(DecoderKernel, "run", run)
    photo = _photo(tmp_path / "a.png")
    result = runner.invoke(app, ["reconstruct", str(photo), "-o", str(tmp_path / "a.obj"), "--weights", str(weights),
                                 *FAST])
    assert_one_line_error(result, "a.png", "NaN or infinite")
    assert not (tmp_path / "a.obj").exists()


# --------------------------------------------------------------------------- 2. same input, same mesh


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_image_gives_byte_identical_meshes_alone_in_batches_shards_and_resume(tmp_path: Path) -> None:
    """The shipped weights (input-dependent output) on a 33^3 lattice: the chair alone, at positions 0, 3
    and 7 of a batch of 8 among other images, in shard 1/2 and after a --skip-existing resume."""
    common = ["--resolution", "16", "--upsampling-steps", "1", "--device", "cpu"]
    target = EXAMPLES / "chair.png"
    alone = tmp_path / "alone.obj"
    result = runner.invoke(app, ["reconstruct", str(target), "-o", str(alone), *common])
    assert result.exit_code == 0, result.output
    reference = _digest(alone)

    others = ["car", "sofa", "table", "sofa", "car"]
    src = tmp_path / "batch"
    src.mkdir()
    names = []
    other = iter(others)
    for pos in range(8):
        name = f"p{pos}.png"
        shutil.copy(target if pos in (0, 3, 7) else EXAMPLES / f"{next(other)}.png", src / name)
        names.append(name)
    out = tmp_path / "b8"
    result = runner.invoke(app, ["reconstruct", str(src), "--out-dir", str(out), "--batch-size", "8", *common])
    assert result.exit_code == 0, result.output
    assert [_digest(out / f"p{pos}.obj") for pos in (0, 3, 7)] == [reference] * 3

    shard = tmp_path / "shard"  # shard 1 of 2 holds p1, p3, p5, p7
    result = runner.invoke(app, ["reconstruct", str(src), "--out-dir", str(shard), "--shard", "1/2", *common])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in shard.iterdir()) == ["p1.obj", "p3.obj", "p5.obj", "p7.obj"]
    assert _digest(shard / "p3.obj") == _digest(shard / "p7.obj") == reference

    for name in ("p1.obj", "p3.obj", "p6.obj"):  # an interrupted run: these were never written
        (out / name).unlink()
    result = runner.invoke(app, ["reconstruct", str(src), "--out-dir", str(out), "--skip-existing",
                                 "--batch-size", "8", *common])
    assert result.exit_code == 0, result.output
    assert _digest(out / "p3.obj") == reference


def test_point_cloud_sampling_does_not_depend_on_batch_neighbours(weights: Path) -> None:
    from recon_cli.pipeline import ExtractOptions, Reconstructor
    from recon_cli.runtime.torch_backend import TorchBackend

    rng = np.random.default_rng(1)
    clouds = [rng.normal(size=(800, 3)).astype(np.float32) * 0.2 for _ in range(3)]
    rec = Reconstructor(TorchBackend.from_checkpoint(weights), options=ExtractOptions(resolution0=16,
                                                                                     upsampling_steps=0))
    alone = rec.reconstruct_points([clouds[2]])[0]
    batched = rec.reconstruct_points(clouds)[2]
    assert np.array_equal(alone.points, batched.points)
    assert np.array_equal(alone.mesh.vertices, batched.mesh.vertices)


# --------------------------------------------------------------------------- 3. tracebacks on wrong output kinds


@pytest.fixture()
def spot(tmp_path: Path) -> Path:
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    import trimesh

    trimesh.creation.box().export(tmp_path / "box.obj")
    return tmp_path


@pytest.mark.parametrize("args, needle", [
    (["data", "synth", "-o", "FILE", "-n", "1", "-c", "chair"], "FILE"),
    (["data", "build", "meshes", "-o", "FILE"], "FILE"),
    (["train", "--data", "DATA", "--out", "FILE", "--model", "onet"], "FILE"),
    (["eval", "--data", "DATA", "--meshes", "DIR", "--out", "FILE"], "FILE"),
    (["data", "preview", "DATA", "-o", "DIR"], "DIR"),
    (["convert", "box.obj", "DIR", "--format", "stl"], "DIR"),
    (["reconstruct", "box.obj", "-o", "DIR"], "DIR"),
])
def test_wrong_output_kind_is_one_line(spot: Path, tiny_dataset: Path, args: list[str], needle: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spot)
    (spot / "meshes" / "chair").mkdir(parents=True)
    shutil.copy(spot / "box.obj", spot / "meshes" / "chair" / "box.obj")
    os.symlink(tiny_dataset, spot / "DATA")
    result = runner.invoke(app, [a for a in args])
    assert_one_line_error(result, needle)
    assert (spot / "FILE").read_text() == "x" and list((spot / "DIR").iterdir()) == []


def test_export_onnx_without_the_onnx_package_is_an_install_hint(tmp_path: Path, weights: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    result = runner.invoke(app, ["export-onnx", "--weights", str(weights), "-o", str(tmp_path / "o")])
    assert_one_line_error(result, "pip install", "onnx")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- 4. outputs checked before the work


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
def test_unwritable_out_dir_fails_before_any_image_is_computed(tmp_path: Path, weights: Path, kind: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import recon_cli.reconstruct as rc

    def no_work(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the model was loaded although the output folder cannot be written")

    monkeypatch.setattr(rc, "make_backend", no_work)
    photos = [_photo(tmp_path / f"{i}.png") for i in range(3)]
    (tmp_path / "taken").write_text("a file")
    out = tmp_path / "taken" if kind == "file" else tmp_path / "taken" / "meshes"
    result = runner.invoke(app, ["reconstruct", *map(str, photos), "--out-dir", str(out), "--weights", str(weights),
                                 *FAST])
    assert_one_line_error(result, "taken")
    one = runner.invoke(app, ["reconstruct", str(photos[0]), "-o", str(tmp_path / "taken" / "x.obj"),
                              "--weights", str(weights), *FAST])
    assert_one_line_error(one, "taken")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_dir_fails_before_the_work(tmp_path: Path, weights: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import recon_cli.reconstruct as rc

    monkeypatch.setattr(rc, "make_backend", lambda *_a, **_k: (_ for _ in ()).throw(AssertionError("work done")))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = runner.invoke(app, ["reconstruct", str(_photo(tmp_path / "a.png")), "--out-dir", str(ro),
                                     "--weights", str(weights), *FAST])
        assert_one_line_error(result, "ro", "not writable")
    finally:
        ro.chmod(0o755)


def test_read_only_probe_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only mount is only seen by trying to create a file (access() says yes to root)."""
    import tempfile

    from recon_cli.errors import InputError
    from recon_cli.io import paths

    def refuse(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match="Read-only file system"):
        paths.check_output_folder(tmp_path / "new" / "meshes")


# --------------------------------------------------------------------------- 8. messages that mislead


def test_random_bytes_named_stl_and_garbage_obj(tmp_path: Path) -> None:
    (tmp_path / "rand.stl").write_bytes(np.random.default_rng(0).bytes(2000))
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 9\n")
    result = runner.invoke(app, ["info", str(tmp_path / "rand.stl")])
    assert_one_line_error(result, "rand.stl", "not an STL file")
    assert "charset" not in result.output
    result = runner.invoke(app, ["convert", str(tmp_path / "bad.obj"), str(tmp_path / "bad.stl")])
    assert_one_line_error(result, "bad.obj", "refers to a vertex")
    assert not (tmp_path / "bad.stl").exists()


def test_folder_named_like_an_image_with_o(tmp_path: Path, weights: Path) -> None:
    folder = tmp_path / "x.png"
    folder.mkdir()
    _photo(folder / "inner.png")
    result = runner.invoke(app, ["reconstruct", str(folder), "-o", str(tmp_path / "x.obj"), "--weights", str(weights)])
    assert result.exit_code == 2
    assert "is a folder" in result.stderr and "several inputs were given" not in result.stderr


def test_huge_image_gets_our_limit_line(tmp_path: Path) -> None:
    """A 144 Mpx PNG trips Pillow's bomb check first; the message must be our pixel limit."""
    import struct
    import zlib

    from recon_cli.errors import InputError
    from recon_cli.io.images import MAX_PIXELS, read_image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12_000, 12_000, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    with pytest.raises(InputError) as info:
        read_image(path)
    assert f"limit {MAX_PIXELS:,}" in str(info.value) and "144,000,000" in str(info.value)
    assert "decompression" not in str(info.value).lower()


def test_weights_folder_is_named_as_a_folder(tmp_path: Path, weights: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(weights, run / "best.pt")
    result = runner.invoke(app, ["reconstruct", str(_photo(tmp_path / "a.png")), "--weights", str(run)])
    assert_one_line_error(result, "run", "is a folder", "best.pt")


def test_save_stages_with_an_empty_stage_one_writes_no_malformed_file(tmp_path: Path) -> None:
    """Stage 1 predicts nothing: no bare `v`/`f` stage-1 OBJ, a warning instead, and the file fails by name."""
    from recon_cli.io.checkpoint import save_checkpoint
    from recon_cli.models import build_model, small_model_config

    cfg = small_model_config("doccnet")
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.stage1.decoder.fc_out.weight.zero_()
        model.stage1.decoder.fc_out.bias.fill_(-50.0)  # empty everywhere
    save_checkpoint(tmp_path / "empty1.pt", model, cfg)
    photo = _photo(tmp_path / "a.png")
    result = runner.invoke(app, ["reconstruct", str(photo), "--save-stages", "--weights", str(tmp_path / "empty1.pt"),
                                 "--json", *FAST])
    assert result.exit_code == 1, result.output
    (r,) = json.loads(result.stdout)["results"]
    assert "empty reconstruction" in r["error"]
    assert "the network sees no object" in r["error"]  # stage 1's peak, as stage 2 never ran
    assert any("stage 1" in w for w in r["warnings"])
    assert not (tmp_path / "a.stage1.obj").exists() and not (tmp_path / "a.obj").exists()


def test_an_empty_reconstruction_names_the_highest_occupancy_and_a_threshold_that_cuts_it(tmp_path: Path) -> None:
    """A field that peaks below the threshold: the error gives the peak and a threshold below it that works."""
    from recon_cli.io.checkpoint import save_checkpoint
    from recon_cli.models import build_model, small_model_config

    cfg = small_model_config("onet")
    model = build_model(cfg).eval()
    with torch.no_grad():  # occupancy near 0.3 everywhere: no surface at 0.9, one below the peak
        model.stage1.decoder.fc_out.bias.fill_(float(np.log(0.3 / 0.7)))
    save_checkpoint(tmp_path / "low.pt", model, cfg)
    photo = _photo(tmp_path / "a.png")
    args = ["reconstruct", str(photo), "--weights", str(tmp_path / "low.pt"), "--json", *FAST]
    result = runner.invoke(app, [*args, "--threshold", "0.9"])
    assert result.exit_code == 1, result.output
    (r,) = json.loads(result.stdout)["results"]
    peak = float(re.search(r"highest occupancy anywhere is ([0-9.]+)", r["error"]).group(1))
    suggested = float(re.search(r"try --threshold ([0-9.]+)", r["error"]).group(1))
    assert 0.05 < peak < 0.9 and suggested < peak
    assert r["error"].splitlines() == [r["error"]] and str(photo) in r["error"]
    again = runner.invoke(app, [*args, "--threshold", str(suggested)])
    (r2,) = json.loads(again.stdout)["results"]
    assert "empty reconstruction" not in (r2.get("error") or ""), r2


# --------------------------------------------------------------------------- 7. eval on damaged data

EVAL_FAST = ["--samples", "1000", "--quality", "draft", "--device", "cpu"]


@pytest.fixture()
def damaged(tiny_dataset: Path, tmp_path: Path) -> Path:
    """The tiny dataset with: chair ell07's pointcloud.npz gone (ground truth), chair ell08's render gone,
    a duplicated line in table's test.lst, and a third category whose test.lst is missing."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    chair, table = "03001627", "04379243"
    tests = {s: (root / s / "test.lst").read_text().split() for s in (chair, table)}
    gt_gone, render_gone = tests[chair][0], tests[chair][1]
    (root / chair / gt_gone / "pointcloud.npz").unlink()
    (root / chair / render_gone / "img_choy2016" / "000.jpg").unlink()
    (root / table / "test.lst").write_text("\n".join([*tests[table], tests[table][0]]))
    shutil.copytree(root / table, root / "02828884")
    (root / "02828884" / "test.lst").unlink()
    meta = (root / "metadata.yaml").read_text()
    (root / "metadata.yaml").write_text(meta + "\n02828884:\n  id: '02828884'\n  name: bench\n")
    return root


def _boxes(root: Path, out: Path) -> Path:
    import trimesh

    for synset in ("03001627", "04379243"):
        for model in (root / synset / "test.lst").read_text().split():
            (out / synset).mkdir(parents=True, exist_ok=True)
            trimesh.creation.box(extents=(0.5, 0.5, 0.5)).export(out / synset / f"{model}.off")
    return out


def test_eval_names_every_skipped_model_and_states_split_problems(damaged: Path, tmp_path: Path) -> None:
    chair, table = "03001627", "04379243"
    tests = (damaged / chair / "test.lst").read_text().split()
    meshes = _boxes(damaged, tmp_path / "meshes")
    result = runner.invoke(app, ["eval", "--data", str(damaged), "--meshes", str(meshes), "--out",
                                 str(tmp_path / "ev"), "--json", "--samples", "1000"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    err = result.stderr
    assert f"skipped: {chair}/{tests[0]}:" in err and "pointcloud.npz" in err
    assert "02828884/test.lst: missing" in err
    assert f"{table}/test.lst: 1 duplicate line" in err
    by_synset = {c["synset"]: c for c in summary["categories"]}
    n_table = len(set((damaged / table / "test.lst").read_text().split()))
    assert by_synset[table]["n"] == n_table == 2
    import csv

    with (tmp_path / "ev" / "objects.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["synset"] == table]
    assert len(rows) == by_synset[table]["n"]
    assert any("02828884" in note for note in summary["notes"])


def test_eval_missing_render_is_skipped_like_missing_ground_truth(damaged: Path, tmp_path: Path,
                                                                  weights: Path) -> None:
    chair = "03001627"
    tests = (damaged / chair / "test.lst").read_text().split()
    result = runner.invoke(app, ["eval", "--data", str(damaged), "--weights", str(weights), "-c", "chair",
                                 "--json", *EVAL_FAST])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    skipped = {d["model"]: d["reason"] for d in summary["skipped"]}
    assert set(skipped) == {tests[0], tests[1]}
    assert "000.jpg" in skipped[tests[1]] or "render" in skipped[tests[1]]
    assert f"skipped: {chair}/{tests[1]}:" in result.stderr
    assert summary["object_mean"]["failed"] == 0 and summary["object_mean"]["n"] == len(tests) - 2


# --------------------------------------------------------------------------- 9. usability


def test_eval_uses_the_shipped_weights_by_default(tiny_dataset: Path) -> None:
    result = runner.invoke(app, ["eval", "--data", str(tiny_dataset), "--limit", "1", "-c", "chair", "--json",
                                 *EVAL_FAST])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["weights"].endswith("doccnet.pt")


def test_retrieval_baseline_takes_training_shapes_from_another_root(tiny_dataset: Path, tmp_path: Path,
                                                                    weights: Path) -> None:
    test_only = tmp_path / "test_only"
    shutil.copytree(tiny_dataset, test_only)
    for lst in [*test_only.glob("*/train.lst"), *test_only.glob("*/val.lst")]:
        lst.unlink()
    base = ["eval", "--data", str(test_only), "--baseline", "retrieval", "--weights", str(weights), "--json",
            "--samples", "1000", "--device", "cpu"]
    result = runner.invoke(app, base)
    assert_one_line_error(result, "--train-root")
    result = runner.invoke(app, [*base, "--train-root", str(tiny_dataset)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["object_mean"]["n"] == 4 and summary["settings"]["train_root"] == str(tiny_dataset)


@pytest.mark.parametrize("command", [["reconstruct"], ["eval"], ["convert"], ["info"], ["export-onnx"],
                                     ["train"], ["data", "check"], ["data", "build"], ["data", "synth"],
                                     ["data", "preview"]])
def test_help_shows_no_bool_metavar_and_plain_usage(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    usage = result.output.splitlines()[0]
    assert "{" not in usage and "......" not in usage and "<list" not in usage


def test_model_and_device_choices_are_shown() -> None:
    for command in (["reconstruct"], ["eval"]):
        out = runner.invoke(app, [*command, "--help"], terminal_width=200).output
        assert "auto|cpu|cuda" in out and "auto|onet" in out


def test_flag_given_a_value_is_a_usage_error(tmp_path: Path) -> None:
    """`--json true x.png`: flags take no value; 'true' must not become an input file."""
    photo = _photo(tmp_path / "x.png")
    result = runner.invoke(app, ["reconstruct", "--json", "true", str(photo)])
    assert result.exit_code == 2, result.output
    assert "--json" in result.stderr and "take no value" in result.stderr


def test_data_check_full_reports_each_problem_once(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    chair = "03001627"
    model = (root / chair / "test.lst").read_text().split()[0]
    (root / chair / model / "pointcloud.npz").unlink()
    points = root / chair / model / "points.npz"
    points.write_bytes(points.read_bytes()[:100])
    result = runner.invoke(app, ["data", "check", str(root), "--full", "--json"])
    assert result.exit_code == 1
    issues = [i for i in json.loads(result.stdout)["issues"] if i["model"] == model]
    files = [i["file"] for i in issues if i["level"] == "error"]
    assert sorted(files) == ["pointcloud.npz", "points.npz"], issues


def test_data_check_on_a_test_only_root_warns_about_missing_train_val(tiny_dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "test_only"
    shutil.copytree(tiny_dataset, root)
    for lst in [*root.glob("*/train.lst"), *root.glob("*/val.lst")]:
        for model in lst.read_text().split():
            shutil.rmtree(root / lst.parent.name / model)
        lst.unlink()
    result = runner.invoke(app, ["data", "check", str(root), "--json"])
    assert result.exit_code == 0, result.output
    issues = json.loads(result.stdout)["issues"]
    assert {i["level"] for i in issues} == {"warning"}
    assert {i["file"] for i in issues} == {"train.lst", "val.lst"}
    (root / "03001627" / "test.lst").unlink()  # no split file at all: an error
    result = runner.invoke(app, ["data", "check", str(root), "--json"])
    assert result.exit_code == 1


def test_quick_start_output_is_ignored_by_git() -> None:
    import re

    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    outputs = re.findall(r"recon reconstruct \S+ -o (\S+)", quick)
    assert outputs
    ignored = {line.strip() for line in (repo / ".gitignore").read_text().splitlines()}
    for out in outputs:
        assert "/" not in out and f"/{out}" in ignored, out


def test_every_benchmark_module_has_run_and_synth_runs_quick() -> None:
    import importlib

    repo = Path(__file__).resolve().parent.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from benchmarks import run as bench_runner

    for name in bench_runner.discover():
        module = importlib.import_module(f"benchmarks.bench_{name}")
        assert callable(getattr(module, "run", None)), name
    doc = bench_runner.run_benchmarks(["synth"], quick=True)
    assert doc["errors"] == {} and doc["benchmarks"]["synth"]["models"] == 2
