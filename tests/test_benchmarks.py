"""The benchmark runner (smoke test on tiny sizes; real benchmarks never run in the test suite)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import run as runner  # noqa: E402


def test_discover_finds_the_bench_modules() -> None:
    names = runner.discover()
    assert {"decoder", "end_to_end"} <= set(names)
    assert names == sorted(names)


def test_unknown_name_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        runner.main(["--only", "nope"])
    assert info.value.code == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_quick_decoder_run_writes_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert runner.main(["--quick", "--only", "bench_decoder", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == doc
    assert doc["quick"] is True and doc["errors"] == {}
    assert list(doc["benchmarks"]) == ["decoder"]
    hw = doc["hardware"]
    assert hw["torch"] and hw["logical_cores"] >= 1 and "cpu" in hw
    cpu = doc["benchmarks"]["decoder"]["devices"]["cpu"]
    assert {"torch threads=1", "onnxruntime threads=1"} <= set(cpu["results"])
    assert all(r["points_per_s_best"] > 0 for r in cpu["results"].values())


def test_a_failing_module_is_recorded_and_the_rest_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.bench_decoder as bench

    def boom(quick: bool) -> dict:
        raise RuntimeError("broken benchmark")

    monkeypatch.setattr(bench, "run", boom)
    doc = runner.run_benchmarks(["decoder"], quick=True)
    assert doc["errors"] == {"decoder": "RuntimeError: broken benchmark"}
    assert doc["benchmarks"] == {}


@pytest.mark.slow
def test_quick_train_benchmark_measures_both_configs() -> None:
    """bench_train --quick: both configs train through recon_cli.training.train (about a minute)."""
    import benchmarks.bench_train as bench

    doc = bench.run(quick=True)
    assert set(doc["configs"]) == {"doccnet-cpu", "doccnet-lite"} and doc["same_query_points"]
    for config in doc["configs"].values():
        assert config["samples_per_s_median"] > 0 and config["n_points"] == 1024
    assert doc["configs"]["doccnet-lite"]["rounds"][0]["feature_cache"]["models"] > 0
    assert doc["ratio_samples_per_s_median"] > 0
    for config in doc["configs"].values():  # the decoders alone are part of a step, never more
        assert config["decoders_s_per_step"] > 0 and 0 < config["decoders_share_of_step"] < 1.5
    assert doc["max_ratio_with_a_free_image_stage"] > 0
