"""ONNX export, the onnxruntime backend and `recon export-onnx`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers_models import make_checkpoint, randomise_weights
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.errors import CheckpointError, InputError
from recon_cli.io.checkpoint import load_checkpoint, save_checkpoint
from recon_cli.pipeline import ExtractOptions, Reconstructor
from recon_cli.runtime.base import Backend
from recon_cli.runtime.onnx_backend import CPU_CHUNK, OnnxBackend
from recon_cli.runtime.onnx_export import FILES, MANIFEST_NAME, ONNX_FORMAT_VERSION, export_onnx
from recon_cli.runtime.torch_backend import TorchBackend

pytest.importorskip("onnxruntime")

runner = CliRunner()


def _scrambled_checkpoint(path: Path, name: str = "doccnet") -> Path:
    """A tiny checkpoint whose every weight and BN statistic is random (no identity-initialised layers)."""
    make_checkpoint(path, name, small=True, seed=3)
    model, cfg, _ = load_checkpoint(path)
    randomise_weights(model, seed=7)
    save_checkpoint(path, model, cfg)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    root = tmp_path_factory.mktemp("onnx")
    weights = _scrambled_checkpoint(root / "m.pt")
    model, _, _ = load_checkpoint(weights)
    out = root / "export"
    export_onnx(model, out)
    return model, out


def test_export_writes_every_network_and_the_manifest(exported: tuple[torch.nn.Module, Path]) -> None:
    model, out = exported
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES.values(), MANIFEST_NAME])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    cfg = model.config
    assert manifest["format_version"] == ONNX_FORMAT_VERSION
    assert (manifest["model"], manifest["image_size"], manifest["n_input_points"]) == ("doccnet", 64, 300)
    assert (manifest["c_dim1"], manifest["c_dim2"]) == (cfg.decoder1.c_dim, cfg.decoder2.c_dim)
    assert manifest["files"] == FILES
    assert manifest["config"]["name"] == "doccnet"


@pytest.mark.parametrize(("batch", "n_points"), [(1, 7), (3, 1000), (2, CPU_CHUNK * 2 + 5)])
def test_logits_match_torch_within_1e_4(exported: tuple[torch.nn.Module, Path], batch: int, n_points: int) -> None:
    model, out = exported
    ref, ort = TorchBackend(model, device="cpu"), OnnxBackend(out, device="cpu")
    gen = torch.Generator().manual_seed(batch)
    points = (torch.rand(batch, n_points, 3, generator=gen) - 0.5) * 1.1  # (B, N, 3)
    images = torch.rand(batch, 3, 64, 64, generator=gen)
    cloud = torch.rand(batch, 300, 3, generator=gen) - 0.5
    c1, c2 = ref.encode_image(images), ref.encode_points(cloud)
    torch.testing.assert_close(ort.encode_image(images), c1, atol=1e-4, rtol=0)
    torch.testing.assert_close(ort.encode_points(cloud), c2, atol=1e-4, rtol=0)
    for stage, c in ((1, c1), (2, c2)):
        expected = ref.decode(stage, points, c)
        assert expected.shape == (batch, n_points) and expected.std() > 0.02  # not a constant field
        got = ort.decode(stage, points, c)
        assert got.shape == (batch, n_points) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_point_encoder_takes_any_cloud_size(exported: tuple[torch.nn.Module, Path]) -> None:
    model, out = exported
    cloud = torch.rand(2, 57, 3) - 0.5
    torch.testing.assert_close(OnnxBackend(out, device="cpu").encode_points(cloud),
                               TorchBackend(model).encode_points(cloud), atol=1e-4, rtol=0)


def test_backend_protocol_and_attributes(exported: tuple[torch.nn.Module, Path]) -> None:
    _, out = exported
    backend = OnnxBackend(out, device="cpu")
    assert isinstance(backend, Backend)
    assert (backend.has_stage1, backend.has_stage2, backend.image_size, backend.n_input_points) == (True, True, 64, 300)
    assert backend.device == torch.device("cpu")
    assert backend.provider == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="stage"):
        backend.decode(3, torch.zeros(1, 2, 3), torch.zeros(1, 16))


def test_reconstructions_match(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "blob.pt", "doccnet", small=True, seed=1, nonempty=True)
    model, _, _ = load_checkpoint(weights)
    export_onnx(model, tmp_path / "onnx")
    options = ExtractOptions(resolution0=16, upsampling_steps=1)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref = Reconstructor(TorchBackend(model), options=options).reconstruct_images(images)
    got = Reconstructor(OnnxBackend(tmp_path / "onnx", device="cpu"), options=options).reconstruct_images(images)
    for a, b in zip(ref, got):
        assert len(a.mesh.faces) > 100
        assert len(b.mesh.faces) == len(a.mesh.faces)
        assert len(b.stage1_mesh.faces) == len(a.stage1_mesh.faces)
        assert b.n_evaluated == a.n_evaluated


@pytest.mark.parametrize(("name", "networks"), [("onet", {"image_encoder", "decoder1"}),
                                                ("onet-pcl", {"point_encoder", "decoder2"})])
def test_single_stage_models(tmp_path: Path, name: str, networks: set[str]) -> None:
    model, _, _ = load_checkpoint(make_checkpoint(tmp_path / "m.pt", name))
    manifest = export_onnx(model, tmp_path / "out")
    assert set(manifest["files"]) == networks
    assert {p.name for p in (tmp_path / "out").glob("*.onnx")} == {FILES[n] for n in networks}
    backend = OnnxBackend(tmp_path / "out", device="cpu")
    assert (backend.has_stage1, backend.has_stage2) == (name == "onet", name == "onet-pcl")


# --------------------------------------------------------------------------- errors


def test_backend_errors_name_the_folder(exported: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such ONNX folder") as info:
        OnnxBackend(tmp_path / "nothere")
    assert info.value.path == str(tmp_path / "nothere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="no recon_onnx.json"):
        OnnxBackend(tmp_path / "plain")
    _, out = exported
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in out.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    (broken / "decoder2.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(CheckpointError, match="cannot load ONNX model") as info:
        OnnxBackend(broken, device="cpu")
    assert info.value.path == str(broken / "decoder2.onnx")
    (broken / "decoder2.onnx").unlink()
    with pytest.raises(CheckpointError, match="missing decoder2"):
        OnnxBackend(broken, device="cpu")
    manifest = json.loads((broken / MANIFEST_NAME).read_text())
    (broken / MANIFEST_NAME).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        OnnxBackend(broken, device="cpu")
    (broken / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read manifest"):
        OnnxBackend(broken, device="cpu")


def test_unknown_device(exported: tuple[torch.nn.Module, Path]) -> None:
    _, out = exported
    with pytest.raises(InputError, match="unknown device"):
        OnnxBackend(out, device="tpu")


def test_export_refuses_a_foreign_folder(exported: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    model, _ = exported
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        export_onnx(model, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left behind


# --------------------------------------------------------------------------- CLI


def test_cli_export_json_and_reexport(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "m.pt", "onet")
    out = tmp_path / "onnx"
    result = runner.invoke(app, ["export-onnx", "--weights", str(weights), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["manifest"]["model"] == "onet"
    assert set(doc["max_abs_diff"]) == {"image_encoder", "decoder1"}
    assert max(doc["max_abs_diff"].values()) < 1e-4
    (out / "stale.onnx").write_bytes(b"old")
    result = runner.invoke(app, ["export-onnx", "-w", str(weights), "-o", str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "decoder1.onnx" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["decoder1.onnx", "image_encoder.onnx", MANIFEST_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "onnx"]


@pytest.mark.parametrize("content", [None, b"not a checkpoint", b"PK\x03\x04truncated"])
def test_cli_bad_weights(tmp_path: Path, content: bytes | None) -> None:
    weights = tmp_path / "w.pt"
    if content is not None:
        weights.write_bytes(content)
    result = runner.invoke(app, ["export-onnx", "-w", str(weights), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(weights) in lines[0]
    assert not (tmp_path / "o").exists()


def test_cli_missing_options_is_usage_error() -> None:
    assert runner.invoke(app, ["export-onnx"]).exit_code == 2


@pytest.mark.gpu
def test_cuda_provider_matches_torch(exported: tuple[torch.nn.Module, Path]) -> None:
    import onnxruntime

    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs torch CUDA and onnxruntime-gpu")
    model, out = exported
    ref, ort = TorchBackend(model, device="cuda"), OnnxBackend(out, device="cuda")
    assert ort.device.type == "cuda" and ort.provider == "CUDAExecutionProvider"
    points = torch.rand(2, 5000, 3, device="cuda") - 0.5
    images = torch.rand(2, 3, 64, 64, device="cuda")
    c1 = ref.encode_image(images)
    torch.testing.assert_close(ort.encode_image(images), c1, atol=1e-3, rtol=0)
    got = ort.decode(1, points, c1)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got, ref.decode(1, points, c1), atol=1e-3, rtol=0)


def test_manifest_file_names_cannot_leave_the_folder(exported: tuple[torch.nn.Module, Path], tmp_path: Path) -> None:
    _, out = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for file in out.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    manifest["files"]["decoder1"] = "../evil.onnx"
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="bad file name '../evil.onnx'"):
        OnnxBackend(copy, device="cpu")


def test_device_accepts_torch_device(exported: tuple[torch.nn.Module, Path]) -> None:
    _, out = exported
    assert OnnxBackend(out, device=torch.device("cpu")).device == torch.device("cpu")
