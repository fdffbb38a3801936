"""Checkpoint files: round trip under weights_only, half precision, every CheckpointError."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers_models import make_checkpoint
from recon_cli.errors import CheckpointError
from recon_cli.io.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from recon_cli.models import build_model, small_model_config


def test_round_trip_weights_only(tmp_path: Path) -> None:
    cfg = small_model_config("doccnet")
    model = build_model(cfg)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, cfg, extra={"step": 3, "rng": torch.arange(4)})
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"format_version", "model", "config", "state_dict", "extra"}
    assert raw["format_version"] == FORMAT_VERSION and raw["model"] == "doccnet"
    loaded, cfg2, extra = load_checkpoint(path)
    assert cfg2 == cfg and extra["step"] == 3 and torch.equal(extra["rng"], torch.arange(4))
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert not list(tmp_path.glob("*.part"))  # atomic write left nothing behind


def test_half_precision_loads_as_float32(tmp_path: Path) -> None:
    cfg = small_model_config("onet")
    model = build_model(cfg)
    path = tmp_path / "h.pt"
    save_checkpoint(path, model, cfg, half=True)
    raw = torch.load(path, weights_only=True)
    w = "stage1.decoder.fc_p.weight"
    assert raw["state_dict"][w].dtype == torch.float16
    assert raw["state_dict"]["stage1.decoder.bn.bn.num_batches_tracked"].dtype == torch.int64
    loaded, _, _ = load_checkpoint(path)
    assert loaded.state_dict()[w].dtype == torch.float32
    assert torch.allclose(loaded.state_dict()[w], model.state_dict()[w], atol=1e-3)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint") as info:
        load_checkpoint(tmp_path / "nope.pt")
    assert "nope.pt" in str(info.value)


def test_truncated_file(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "t.pt", "onet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt|cannot read") as info:
        load_checkpoint(path)
    assert "t.pt" in str(info.value)


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "g.pt"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="g.pt"):
        load_checkpoint(path)


def test_not_a_recon_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a recon checkpoint"):
        load_checkpoint(path)


def test_wrong_format_version(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "v.pt", "onet")
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_config_state_mismatch(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "m.pt", "onet")
    raw = torch.load(path, weights_only=True)
    raw["config"]["decoder1"]["hidden"] = 32  # weights were made with hidden 16
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="weights do not match the config: .*shape mismatch") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_keys_named(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "k.pt", "doccnet")
    raw = torch.load(path, weights_only=True)
    raw["model"] = raw["config"]["name"] = "onet"  # stage-2 weights become unexpected
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="unexpected: stage2"):
        load_checkpoint(path)


def test_bad_config_values(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "c.pt", "onet")
    raw = torch.load(path, weights_only=True)
    raw["config"]["surprise"] = 1
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="bad model config.*surprise"):
        load_checkpoint(path)


def test_pickled_objects_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.pt"
    torch.save({"format_version": 1, "state_dict": {}, "obj": Path("x")}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(path)


def test_corrupt_bytes_detected(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "c.pt", "onet")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # damage inside a tensor record
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        load_checkpoint(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "e.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty checkpoint file"):
        load_checkpoint(path)


def test_loaded_model_is_trainable(tmp_path: Path) -> None:
    model, _, _ = load_checkpoint(make_checkpoint(tmp_path / "t.pt", "onet"))
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
