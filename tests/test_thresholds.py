"""The surface threshold tuned on validation travels in the checkpoint and is the default everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_models import make_checkpoint

from recon_cli.io.checkpoint import default_thresholds
from recon_cli.pipeline import ExtractOptions, Reconstructor
from recon_cli.runtime.torch_backend import TorchBackend


def test_default_thresholds_reads_only_valid_probabilities() -> None:
    assert default_thresholds({}) == {}
    assert default_thresholds({"thresholds": {"doccnet": 0.35, "onet": 0.25}}) == {"doccnet": 0.35, "onet": 0.25}
    assert default_thresholds({"thresholds": {"doccnet": 1.5, "onet": "x", "other": 0.3}}) == {}


def test_reconstructor_uses_the_checkpoint_threshold_unless_given(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "w.pt", thresholds={"doccnet": 0.35, "onet": 0.25})
    backend = TorchBackend.from_checkpoint(weights, threads=1)
    assert Reconstructor(backend, stages="auto").options.threshold == 0.35
    assert Reconstructor(backend, stages="1").options.threshold == 0.25
    assert Reconstructor(backend, stages="1+2").options.threshold == 0.35
    given = Reconstructor(backend, options=ExtractOptions(threshold=0.5), stages="auto")
    assert given.options.threshold == 0.5
    plain = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "p.pt"), threads=1)
    assert Reconstructor(plain).options.threshold == 0.2
    assert np.isclose(ExtractOptions().level, np.log(0.2 / 0.8))


def test_cli_reports_the_threshold_it_used(tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from recon_cli.cli.app import app

    weights = make_checkpoint(tmp_path / "w.pt", thresholds={"doccnet": 0.9999, "onet": 0.9999})
    image = tmp_path / "x.png"
    arr = np.full((64, 64, 3), 255, np.uint8)
    arr[16:48, 20:44] = (180, 60, 60)
    Image.fromarray(arr).save(image)
    result = CliRunner().invoke(app, ["reconstruct", str(image), "-o", str(tmp_path / "x.obj"), "--weights",
                                      str(weights), "--quality", "draft", "--threads", "1"])
    # random weights at a threshold of 0.9999 find no surface: the message names the stored threshold
    assert result.exit_code == 1
    assert "0.9999" in result.output


def test_onnx_export_carries_the_thresholds(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from recon_cli.runtime.onnx_backend import OnnxBackend
    from recon_cli.runtime.onnx_export import export_checkpoint

    weights = make_checkpoint(tmp_path / "w.pt", thresholds={"doccnet": 0.3})
    manifest = export_checkpoint(weights, tmp_path / "onnx")
    assert manifest["thresholds"] == {"doccnet": 0.3}
    backend = OnnxBackend(tmp_path / "onnx", device="cpu", threads=1)
    assert Reconstructor(backend).options.threshold == 0.3


def test_tune_threshold_writes_the_best_threshold_per_mode(tiny_dataset: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from recon_cli.cli.app import app
    from recon_cli.io.checkpoint import load_checkpoint

    weights = make_checkpoint(tmp_path / "w.pt", nonempty=True)
    out = tmp_path / "tuned.pt"
    result = CliRunner().invoke(app, ["tune-threshold", str(weights), "--data", str(tiny_dataset), "--split", "test",
                                      "--limit", "2", "-o", str(out), "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["best"]) == {"onet", "doccnet", "blend"} and report["models"] == 2
    for mode, row in report["table"].items():
        assert all(0.0 <= v <= 1.0 for v in row.values())
        assert report["best"][mode] == float(max(row, key=row.get))
    _model, _cfg, extra = load_checkpoint(out)
    assert default_thresholds(extra) == report["best"]
    assert extra["note"] == "random weights for tests"  # the rest of extra is kept
    backend = TorchBackend.from_checkpoint(out, threads=1)
    assert Reconstructor(backend, stages="1").options.threshold == report["best"]["onet"]
    assert Reconstructor(backend, stages="blend").options.threshold == report["best"]["blend"]
    missing = CliRunner().invoke(app, ["tune-threshold", str(tmp_path / "nope.pt"), "--data", str(tiny_dataset)])
    assert missing.exit_code == 1 and "nope.pt" in missing.output


def test_checkpoint_default_model_decides_what_auto_runs(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "w.pt", thresholds={"doccnet": 0.3, "onet": 0.4}, default_model="onet")
    backend = TorchBackend.from_checkpoint(weights, threads=1)
    auto = Reconstructor(backend, stages="auto")
    assert auto.stages == "1" and auto.options.threshold == 0.4
    both = Reconstructor(backend, stages="1+2")
    assert both.stages == "1+2" and both.options.threshold == 0.3
    plain = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "p.pt"), threads=1)
    assert Reconstructor(plain, stages="auto").stages == "auto"
    blended = TorchBackend.from_checkpoint(make_checkpoint(tmp_path / "b.pt", thresholds={"doccnet": 0.3, "blend": 0.45},
                                                           default_model="blend"), threads=1)
    auto = Reconstructor(blended, stages="auto")
    assert auto.stages == "blend" and auto.options.threshold == 0.45
