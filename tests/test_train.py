"""Training: loss goes down, exact resume, SIGTERM, DDP (gloo, 2 processes), checkpoints, config."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.errors import ConfigError
from recon_cli.training import (
    DataConfig,
    StepBatchSampler,
    batch_indices,
    config_to_yaml,
    iou_per_object,
    resolve_config,
    train,
)

runner = CliRunner()

#: Tiny widths so a step takes milliseconds.
SMALL = [
    "model.image_encoder={c_dim: 16, width: 4, image_size: 32}",
    "model.pointnet={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.decoder1={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.decoder2={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.n_input_points=64",
    "data.n_points=256", "data.val_n_points=512", "data.workers=0", "data.val_max_models=4",
    "optim.batch_size=4", "optim.lr=0.003", "device=cpu",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_model(model_dir: Path, kind: str, size: float, rng: np.random.Generator) -> None:
    """Analytic sphere (radius size) or cube (half side size) in the ShapeNet layout (small N)."""
    model_dir.mkdir(parents=True)
    pts = rng.uniform(-0.55, 0.55, (4096, 3)).astype(np.float32)
    occ = (np.linalg.norm(pts, axis=1) < size) if kind == "sphere" else (np.abs(pts).max(axis=1) < size)
    np.savez(model_dir / "points.npz", points=pts.astype(np.float16), occupancies=np.packbits(occ),
             loc=np.zeros(3), scale=np.float64(1.0))
    d = rng.normal(size=(2048, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    surf = d * size if kind == "sphere" else d / np.abs(d).max(axis=1, keepdims=True) * size
    np.savez(model_dir / "pointcloud.npz", points=surf.astype(np.float16), normals=d.astype(np.float16),
             loc=np.zeros(3), scale=np.float64(1.0))
    (model_dir / "img_choy2016").mkdir()
    yy, xx = np.mgrid[:64, :64] / 63.0 - 0.5
    for view in range(2):
        inside = (np.hypot(xx, yy) < size) if kind == "sphere" else (np.maximum(abs(xx), abs(yy)) < size)
        img = np.full((64, 64, 3), 255, np.uint8)
        img[inside] = (40 + 60 * view, 80, 160)
        Image.fromarray(img).save(model_dir / "img_choy2016" / f"{view:03d}.jpg")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two categories (spheres, cubes) of varying size: 6 train and 2 val models each."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    meta = {}
    for synset, kind in (("02691156", "sphere"), ("02828884", "cube")):
        meta[synset] = {"id": synset, "name": kind}
        ids = {"train": [f"{kind}{i}" for i in range(6)], "val": [f"{kind}v{i}" for i in range(2)], "test": []}
        for split, models in ids.items():
            for i, model in enumerate(models):
                _write_model(root / synset / model, kind, 0.2 + 0.05 * (i % 4), rng)
            (root / synset / f"{split}.lst").write_text("\n".join(models))
    (root / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return root


def _cfg(model: str = "doccnet", *extra: str):
    return resolve_config(model=model, overrides=[*SMALL, *extra])


def _run(cfg, data: Path, out: Path, **kwargs):
    losses: dict[int, float] = {}

    def on_event(event: dict) -> None:
        if event["type"] == "step":
            losses[event["step"]] = event["loss"]

    result = train(cfg, data_root=data, out_dir=out, on_event=on_event, **kwargs)
    return result, losses


def test_sampler_covers_each_epoch_and_shards() -> None:
    n, b = 10, 4
    flat = np.concatenate([batch_indices(n, b, s, seed=3) for s in range(5)])  # 20 = two epochs
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert np.array_equal(batch_indices(n, b, 3, seed=3), batch_indices(n, b, 3, seed=3))
    r0 = list(StepBatchSampler(n, b, seed=3, start=2, stop=4, rank=0, world_size=2))
    r1 = list(StepBatchSampler(n, b, seed=3, start=2, stop=4, rank=1, world_size=2))
    whole = list(StepBatchSampler(n, b, seed=3, start=2, stop=4))
    assert len(r0) == 2 and all(len(x) == 2 for x in r0 + r1)
    assert [sorted(a + c) for a, c in zip(r0, r1)] == [sorted(w) for w in whole]


def test_sampler_repeats_weighted_items() -> None:
    n, b = 5, 3
    repeats = np.array([1, 3, 1, 1, 2])  # an epoch is 8 draws
    flat = np.concatenate([batch_indices(n, b, s, seed=1, repeats=repeats) for s in range(8)])  # 24 = 3 epochs
    for epoch in range(3):
        assert np.bincount(flat[8 * epoch:8 * epoch + 8], minlength=n).tolist() == repeats.tolist()
    assert np.array_equal(batch_indices(n, b, 4, seed=1, repeats=repeats), flat[12:15])  # a resume draws the same
    whole = list(StepBatchSampler(n, b, seed=1, start=0, stop=8, repeats=repeats))
    assert [i for batch in whole for i, _ in batch] == flat.tolist()
    with pytest.raises(ValueError, match="repeats"):
        batch_indices(n, b, 0, seed=1, repeats=np.array([1, 0, 1, 1, 1]))


def test_imported_repeat_weights_real_models_only() -> None:
    from recon_cli.training.loop import imported_repeats

    models = [("03001627", "synth_chair_00001"), ("03001627", "sh3d_blendswap-cc-0_armchair"), ("02691156", "fg_c172p")]
    assert imported_repeats(models, 1) is None
    assert imported_repeats(models, 3).tolist() == [1, 3, 3]
    with pytest.raises(ValueError, match="imported_repeat"):
        DataConfig(imported_repeat=0)


def test_iou_per_object() -> None:
    logits = torch.tensor([[1.0, 1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    occ = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(iou_per_object(logits, occ, 0.0), torch.tensor([1 / 3, 1.0]))


@pytest.fixture(scope="module")
def doccnet_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """30 joint steps, then 2 fine-tuning steps of stage 2 on stage-1 clouds."""
    out = tmp_path_factory.mktemp("run")
    cfg = _cfg("doccnet", "steps=30", "val_every=15", "log_every=10", "finetune_stage2_on_stage1=true",
               "finetune={steps: 2, views: 1, resolution0: 8, upsampling_steps: 0}", "threshold=0.3")
    result, losses = _run(cfg, dataset, out)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return cfg, result, losses, out, records


def test_training_reduces_loss_and_writes_run(doccnet_run) -> None:
    cfg, result, losses, out, records = doccnet_run
    assert result.stopped == "done" and result.step == 32 and sorted(losses) == list(range(1, 33))
    first = np.mean([losses[s] for s in range(1, 6)])
    last = np.mean([losses[s] for s in range(26, 31)])
    assert last < 0.7 * first, (first, last)
    joint = [r for r in records if "samples_per_s" in r and r["phase"] == "joint"]
    assert [r["step"] for r in joint] == [10, 20, 30]
    assert all(k in joint[0] for k in ("loss", "loss1", "loss2", "lr", "elapsed"))
    val = [r for r in records if "val/iou" in r and r["phase"] == "joint"]
    assert [r["step"] for r in val] == [15, 30] and all(0 <= r["val/iou1"] <= 1 for r in val)
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolve_config(overrides=[], base=saved) == cfg


def test_finetune_phase_on_stage1_clouds(doccnet_run) -> None:
    cfg, result, losses, out, records = doccnet_run
    cache = torch.load(out / "finetune_cache.pt", weights_only=True)
    assert cache["train"]["clouds"].shape == (12, 1, 64, 3) and cache["val"]["clouds"].shape == (4, 1, 64, 3)
    # after 30 steps stage 1 predicts non-empty shapes: the clouds lie on its surface, inside the box
    assert cache["train"]["valid"].all() and cache["train"]["clouds"].abs().max() <= 0.5501
    assert cache["train"]["clouds"].std() > 0.01
    ft = [r for r in records if r.get("phase") == "finetune" and "val/iou_chain" in r]
    assert [r["step"] for r in ft] == [30, 32]  # baseline before fine-tuning, then at the end
    assert all("loss2" in r and "loss1" not in r for r in records if r.get("phase") == "finetune" and "loss" in r)
    extra = torch.load(out / "last.pt", weights_only=True)["extra"]
    assert extra["phase"] == "finetune" and extra["step"] == 32


def test_checkpoint_round_trip_weights_only(doccnet_run) -> None:
    from recon_cli.io.checkpoint import load_checkpoint

    cfg, result, losses, out, records = doccnet_run
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)["extra"]
    assert best["step"] == result.best_step and best["phase"] == ("joint" if result.best_step <= 30 else "finetune")
    assert best["best_iou"] == result.best_iou and "optimizer" not in best  # best.pt: weights for use
    extra = torch.load(out / "last.pt", map_location="cpu", weights_only=True)["extra"]
    assert set(extra["rng"]) >= {"python", "numpy", "torch"} and "state" in extra["optimizer"]
    model, mcfg, _ = load_checkpoint(out / "last.pt")
    assert mcfg == cfg.model and model.stage1 is not None and model.stage2 is not None
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in last.items())


def test_resume_gives_identical_next_losses(dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg("doccnet", "steps=5", "val_every=100", "checkpoint_every=100")
    _, full = _run(cfg, dataset, tmp_path / "full")
    part, first = _run(cfg, dataset, tmp_path / "cut", max_steps=2)
    assert part.stopped == "max_steps" and part.step == 2
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["extra"]["step"] == 2
    with open(tmp_path / "cut" / "log.jsonl", "a") as fh:  # a record the interrupted run wrote after last.pt
        fh.write(json.dumps({"step": 3, "loss": 0.0}) + "\n")
    done, rest = _run(cfg, dataset, tmp_path / "cut", resume=True)
    assert done.step == 5 and sorted(rest) == [3, 4, 5]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == [2, 5, 5]  # the stale step-3 record is gone; step 5: training and val records
    assert [first[1], first[2], rest[3], rest[4], rest[5]] == [full[s] for s in range(1, 6)]


def test_sigterm_saves_and_stops(dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg("onet-pcl", "steps=50", "val_every=100", "checkpoint_every=100")

    def on_event(event: dict) -> None:
        if event["type"] == "step" and event["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    result = train(cfg, data_root=dataset, out_dir=tmp_path / "run", on_event=on_event)
    # the signal lands after step 3's stop vote, so the run ends after step 4
    assert result.stopped == "signal" and result.step == 4 and result.signal == signal.SIGTERM
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["extra"]["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_diverging_loss_is_an_error(dataset: Path, tmp_path: Path) -> None:
    from recon_cli.errors import ReconError

    cfg = _cfg("onet-pcl", "steps=3", "optim.lr=1e30")  # YAML 1.1 reads 1e38 as a string: resolve_config accepts it
    with pytest.raises(ReconError, match=r"the loss became (nan|inf) at step 2"):
        train(cfg, data_root=dataset, out_dir=tmp_path / "run")


def test_sigterm_to_process_group_with_loader_workers(dataset: Path, tmp_path: Path) -> None:
    """As a scheduler or Ctrl-C does: the whole group gets the signal; workers must not die first."""
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "recon_cli", "train", "--data", str(dataset), "--model", "onet-pcl",
           "--out", str(out), "--json"]
    for s in [*SMALL, "data.workers=2", "steps=100000", "log_every=1", "val_every=100000"]:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out / "log.jsonl").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-2000:]  # 128 + SIGTERM: a scheduler sees an interrupted run
    result = json.loads(stdout)
    assert result["stopped"] == "signal" and result["step"] >= 1 and result["signal"] == signal.SIGTERM
    assert torch.load(out / "last.pt", weights_only=True)["extra"]["step"] == result["step"]


def test_existing_run_needs_resume(dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg("onet-pcl", "steps=1")
    _run(cfg, dataset, tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, data_root=dataset, out_dir=tmp_path / "run")


def test_ddp_two_processes_gloo(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "recon_cli", "train", "--data", str(dataset), "--model", "onet-pcl", "--out", str(out),
           "--json", "--max-steps", "3"]
    for s in [*SMALL, "steps=3", "val_every=3"]:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"): proc.stdout.rindex("}") + 1])
    assert result["step"] == 3 and result["stopped"] == "done"
    extra = torch.load(out / "last.pt", weights_only=True)["extra"]
    assert extra["world_size"] == 2 and extra["step"] == 3
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "samples_per_s" in r] == [3]  # rank 0 only
    assert math.isfinite(records[0]["loss"])


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"config\.optim: unknown key\(s\) lrr"):
        resolve_config(model="onet", overrides=["optim.lrr=1"])
    result = runner.invoke(app, ["train", "--model", "onet", "--set", "data.bogus=1", "--dry-run"])
    assert result.exit_code == 1 and "bogus" in result.stderr


def test_config_file_layers(tmp_path: Path) -> None:
    path = tmp_path / "my.yaml"
    path.write_text("optim: {lr: 0.002}\nsteps: 7\n")
    cfg = resolve_config(model="doccnet", config_file=path, overrides=["steps=9"])
    assert (cfg.optim.lr, cfg.steps, cfg.optim.batch_size) == (0.002, 9, 64)
    with pytest.raises(ConfigError, match="conflicts"):
        resolve_config(model="onet", config_file="doccnet-cpu")
    with pytest.raises(ConfigError, match="no such config file"):
        resolve_config(model="onet", config_file=tmp_path / "missing.yaml")


def test_dry_run_prints_paper_settings() -> None:
    result = runner.invoke(app, ["train", "--model", "doccnet", "--dry-run"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert cfg["optim"]["lr"] == 1e-4 and cfg["optim"]["batch_size"] == 64
    assert cfg["data"]["n_points"] == 2048 and cfg["data"]["input_noise"] == 0.005 and cfg["data"]["augment"]
    assert cfg["model"]["n_input_points"] == 300 and cfg["model"]["image_encoder"]["width"] == 64
    assert result.stdout == config_to_yaml(resolve_config(model="doccnet"))
    cpu = runner.invoke(app, ["train", "--config", "doccnet-cpu", "--dry-run", "--json"])
    assert cpu.exit_code == 0 and json.loads(cpu.stdout)["model"]["decoder1"]["hidden"] == 128


def test_cli_trains_and_resumes(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", str(dataset), "--model", "onet-pcl", "--out", str(out), "--json"]
    for s in [*SMALL, "steps=3", "val_every=3"]:
        args += ["--set", s]
    first = runner.invoke(app, [*args, "--max-steps", "1"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["stopped"] == "max_steps"
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--resume" in again.stderr
    resumed = runner.invoke(app, ["train", "--data", str(dataset), "--out", str(out), "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["step"] == 3


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_preloaded_items_equal_reader_items(dataset: Path, mode: str) -> None:
    from recon_cli.data.shapenet import ShapeNetDataset
    from recon_cli.training import SeededItems, preloaded_dataset_class

    kwargs = dict(mode=mode, n_points=128, n_input_points=32, image_size=32, augment=mode == "train")
    plain = SeededItems(ShapeNetDataset(dataset, "train", **kwargs))
    pre = SeededItems(preloaded_dataset_class()(dataset, "train", **kwargs))
    for key in [(0, 11), (5, 12), (11, 13)]:
        a, b = plain[key], pre[key]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k], k


def test_workers_and_preload_do_not_change_the_run(dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg("onet", "steps=3", "val_every=100")
    _, plain = _run(cfg, dataset, tmp_path / "plain")
    other = _cfg("onet", "steps=3", "val_every=100", "data.workers=2", "data.preload=true")
    _, loaded = _run(other, dataset, tmp_path / "workers")
    assert plain == loaded and len(plain) == 3


def test_bf16_autocast_and_progress_display(dataset: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(dataset), "--model", "onet", "--out", str(tmp_path / "run"), "--max-steps", "2",
            "--threads", "2"]
    for s in [*SMALL, "precision=bf16", "steps=5", "val_every=2"]:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1  # restored after the run
    assert "max_steps: step 2/5" in result.stderr and "best val IoU" in result.stderr and result.stdout == ""
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert math.isfinite(records[0]["loss"]) and records[-1]["step"] == 2


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_exit_code_of_a_signalled_run(dataset: Path, tmp_path: Path, signum: int, code: int) -> None:
    """Issue 16: an interrupted run must not exit 0 (last.pt is saved; the code tells it from a finished one)."""
    out = tmp_path / "run"
    args = ["train", "--data", str(dataset), "--model", "onet-pcl", "--out", str(out)]
    for s in [*SMALL, "steps=50", "val_every=100", "checkpoint_every=100"]:
        args += ["--set", s]
    import recon_cli.training.loop as loop

    real = loop.Trainer.emit

    def emit(self, event: dict) -> None:  # noqa: ANN001
        real(self, event)
        if event["type"] == "step" and event["step"] == 2:
            os.kill(os.getpid(), signum)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop.Trainer, "emit", emit)
        result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "stopped by" in result.stderr and "--resume" in result.stderr
    assert (out / "last.pt").is_file()


def test_resume_without_last_pt_fails_with_one_line(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "typo"
    result = runner.invoke(app, ["train", "--data", str(dataset), "--model", "onet-pcl", "--out", str(out),
                                 "--resume", "--set", "steps=1"])
    assert result.exit_code == 1, result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert "no last.pt" in line and str(out) in line
    assert not (out / "last.pt").exists()


def test_train_without_model_is_a_usage_error(dataset: Path, tmp_path: Path) -> None:
    from recon_cli.cli.train import MODELS
    from recon_cli.models.config import MODEL_NAMES

    assert MODELS == MODEL_NAMES
    result = runner.invoke(app, ["train", "--data", str(dataset), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--model" in result.stderr
    assert runner.invoke(app, ["train", "--model", "occnet", "--dry-run"]).exit_code == 2
    assert runner.invoke(app, ["train", "--model", "onet"]).exit_code == 2  # no --data/--out


def test_empty_val_split_warns_that_no_best_pt_is_written(dataset: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    for lst in root.glob("*/val.lst"):
        lst.write_text("")
    args = ["train", "--data", str(root), "--model", "onet-pcl", "--out", str(tmp_path / "run")]
    for s in [*SMALL, "steps=2", "val_every=1"]:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "no best.pt" in result.stderr
    assert not (tmp_path / "run" / "best.pt").exists()


def test_init_weights_starts_a_new_run_from_a_checkpoint(dataset: Path, tmp_path: Path) -> None:
    from recon_cli.io.checkpoint import load_checkpoint

    cfg = _cfg("onet-pcl", "steps=4", "val_every=100", "checkpoint_every=100")
    first, _ = _run(cfg, dataset, tmp_path / "first")
    start = dict(load_checkpoint(first.last_path)[0].named_parameters())  # BatchNorm statistics move
    # zero steps of training would be the loaded weights: compare after one step at a tiny lr instead
    warm = _cfg("onet-pcl", "steps=1", "optim.lr=1e-12", "val_every=100", f"init_weights={first.last_path}")
    result, _ = _run(warm, dataset, tmp_path / "warm")
    assert result.step == 1  # a new run: steps count from 0, fresh optimiser
    after = dict(load_checkpoint(result.last_path)[0].named_parameters())
    bad = [k for k in start if not torch.allclose(after[k].float(), start[k].float(), atol=1e-6)]
    assert bad == [], bad
    fresh, _ = _run(_cfg("onet-pcl", "steps=1", "optim.lr=1e-12", "val_every=100"), dataset, tmp_path / "fresh")
    other = dict(load_checkpoint(fresh.last_path)[0].named_parameters())
    assert not all(torch.allclose(other[k].float(), start[k].float(), atol=1e-6) for k in start)
    # a checkpoint of another architecture: one line naming the file and what differs
    args = ["train", "--data", str(dataset), "--model", "onet-pcl", "--out", str(tmp_path / "bad"),
            "--init-weights", first.last_path]
    for s in [*SMALL, "model.decoder2={c_dim: 16, hidden: 8, n_blocks: 1}", "steps=1"]:
        args += ["--set", s]
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "init_weights" in bad.stderr and "model.decoder2.hidden" in bad.stderr and "first" in bad.stderr
    missing = runner.invoke(app, [*args[:-2 - 2 * (len(SMALL) + 2)], "--init-weights", str(tmp_path / "nope.pt")])
    assert missing.exit_code == 2 and "nope.pt" in missing.stderr
