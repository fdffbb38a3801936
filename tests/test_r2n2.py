"""3D-R2N2 (model.name = r2n2): layer shapes, the recurrent units, voxel targets, training, CLI."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.data.binvox import write_binvox
from recon_cli.models import ImageEncoderConfig, ModelConfig, VoxelConfig, build_model, small_model_config
from recon_cli.models.r2n2 import Conv3dGRU
from recon_cli.training import resolve_config, train
from recon_cli.training.voxel import VoxelItems, voxel_iou, voxel_target
from recon_cli.voxel import grid_to_voxel_mesh

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()

#: A tiny r2n2 whose frozen random CNN trunk goes through the feature cache (a step takes milliseconds).
TINY = [
    "model.image_encoder={name: r2n2-cnn, c_dim: 16, width: 4, image_size: 64, init: '', trainable_blocks: 0}",
    "model.voxel={hidden: 8, decoder_channels: [8, 8, 4], max_views: 3}",
    "data.val_max_models=8", "optim.batch_size=4", "optim.lr=0.003", "optim.warmup_steps=0",
    "optim.schedule=constant", "threads=1", "log_every=10",
]


def _cfg(*extra: str):
    return resolve_config(model="r2n2", overrides=[*TINY, *extra])


# ------------------------------------------------------------------------------ model


def test_layer_shapes_of_the_paper_sized_model() -> None:
    """The paper's sizes: 127 px -> residual CNN (96..256 ch) -> FC 1024 -> 4^3 x 128 GRU -> 32^3."""
    cfg = ModelConfig(name="r2n2", image_encoder=ImageEncoderConfig(name="r2n2-cnn", c_dim=1024, width=96,
                                                                      image_size=127))
    model = build_model(cfg).eval()
    images = torch.rand(2, 3, 3, 127, 127)
    shapes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
             for m in (*model.encoder.blocks, *model.decoder.up[::2], model.decoder.out)]
    with torch.no_grad():
        pooled, fmap = model.encoder.features(images[:, 0])
        codes = model.encode(images)
        hidden = model.fuse(codes)
        logits = model.decode(hidden)
    for h in hooks:
        h.remove()
    assert [s[1] for s in shapes[:6]] == [96, 128, 256, 256, 256, 256]  # the paper's conv channels
    assert shapes[:6][0][2:] == (127, 127) and fmap.shape == (2, 256, 2, 2)
    assert pooled.shape == (2, 1024) and codes.shape == (2, 3, 1024)
    assert hidden.shape == (2, 128, 4, 4, 4)
    assert [s[1:] for s in shapes[-4:]] == [(64, 8, 8, 8), (32, 16, 16, 16), (16, 32, 32, 32), (1, 32, 32, 32)]
    assert logits.shape == (2, 32, 32, 32)


def test_gru_step_follows_the_paper_equations() -> None:
    torch.manual_seed(0)
    gru = Conv3dGRU(c_dim=5, hidden=3, grid=4)
    x, h = torch.randn(2, 5), torch.randn(2, 3, 4, 4, 4)
    (out,) = gru(x, (h,))
    w = gru.input.fc(x).view(2, 9, 4, 4, 4)
    conv = torch.nn.functional.conv3d
    uu = conv(h, gru.gates.weight[:3], padding=1)
    ur = conv(h, gru.gates.weight[3:], padding=1)
    u = torch.sigmoid(w[:, :3] + uu)
    r = torch.sigmoid(w[:, 3:6] + ur)
    expected = (1 - u) * h + u * torch.tanh(w[:, 6:] + conv(r * h, gru.candidate.weight, padding=1))
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("unit", ["gru", "lstm"])
def test_masked_views_leave_the_state_unchanged(unit: str) -> None:
    torch.manual_seed(0)
    cfg = small_model_config("r2n2")
    cfg = ModelConfig(name="r2n2", image_encoder=cfg.image_encoder,
                      voxel=VoxelConfig(unit=unit, hidden=8, decoder_channels=(8, 8, 4), max_views=3))
    model = build_model(cfg).eval()
    images = torch.rand(1, 2, 3, 64, 64)
    padded = torch.cat([images, torch.rand(1, 1, 3, 64, 64)], dim=1)
    with torch.no_grad():
        plain = model(images)
        masked = model(padded, torch.tensor([[True, True, False]]))
        other = model(images.flip(1))
    torch.testing.assert_close(masked, plain)
    assert not torch.allclose(other, plain)  # a recurrent unit: the order matters (only in expectation not)


def test_voxel_config_is_checked() -> None:
    from recon_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="voxel.resolution"):
        VoxelConfig(decoder_channels=(8, 8))
    with pytest.raises(ConfigError, match="unknown voxel.unit"):
        VoxelConfig(unit="rnn")


# ---------------------------------------------------------------------------- targets


def test_voxel_target_reads_our_frame_and_resamples_others(tmp_path: Path) -> None:
    centres = (np.arange(32) + 0.5) / 32 - 0.5
    x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    ours = (np.abs(x - 0.1) < 0.2) & (np.abs(y) < 0.3) & (np.abs(z + 0.1) < 0.15)
    (tmp_path / "a").mkdir()
    write_binvox(tmp_path / "a" / "model.binvox", ours)
    np.testing.assert_array_equal(voxel_target(tmp_path / "a"), ours)
    # the same box in a raw frame: normalised = (raw - loc) / scale, binvox 64^3 over [t, t + 3]^3
    loc, scale, t = np.array([1.0, -2.0, 0.5]), 2.0, np.array([-0.5, -4.0, -1.0])
    fine = (np.arange(64) + 0.5) / 64 * 3.0
    rx, ry, rz = np.meshgrid(fine + t[0], fine + t[1], fine + t[2], indexing="ij")
    nx, ny, nz = (rx - loc[0]) / scale, (ry - loc[1]) / scale, (rz - loc[2]) / scale
    raw = (np.abs(nx - 0.1) < 0.2) & (np.abs(ny) < 0.3) & (np.abs(nz + 0.1) < 0.15)
    (tmp_path / "b").mkdir()
    write_binvox(tmp_path / "b" / "model.binvox", raw, translate=tuple(t), scale=3.0)
    np.savez(tmp_path / "b" / "points.npz", points=np.zeros((1, 3), np.float16), occupancies=np.zeros(1, np.uint8),
             loc=loc, scale=np.float64(scale))
    remapped = voxel_target(tmp_path / "b")
    from scipy.ndimage import binary_erosion

    # nearest-voxel resampling only moves voxels on the boundary
    assert remapped[binary_erosion(ours)].all() and not remapped[binary_erosion(~ours)].any()
    assert (remapped != ours).mean() < 0.02


def test_voxel_iou() -> None:
    logits = torch.full((2, 4, 4, 4), -5.0)
    logits[0, :2] = 5.0
    target = torch.zeros(2, 4, 4, 4)
    target[0, :1] = 1
    np.testing.assert_allclose(voxel_iou(logits, target, 0.0).numpy(), [0.5, 1.0])


# -------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("upsample", [1, 2, 4])
def test_grid_mesh_is_in_the_binvox_frame(upsample: int) -> None:
    centres = (np.arange(32) + 0.5) / 32 - 0.5
    x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    prob = np.clip(0.5 + (0.3 - np.sqrt((x - 0.1) ** 2 + y**2 + z**2)) * 16, 0, 1).astype(np.float32)
    mesh = grid_to_voxel_mesh(prob, 0.5, upsample=upsample)
    radius = np.linalg.norm(mesh.vertices - [0.1, 0, 0], axis=1)
    assert mesh.is_watertight
    assert abs(radius.mean() - 0.3) < 0.01 and radius.std() < 0.01
    full = grid_to_voxel_mesh(np.ones((32, 32, 32), np.float32), 0.4, upsample=upsample)
    np.testing.assert_allclose(full.bounds, [[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]], atol=1 / 32)
    assert len(grid_to_voxel_mesh(np.zeros((32, 32, 32), np.float32), 0.4).faces) == 0


# ---------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def one_model(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset holding one chair (an ellipsoid) in both its train and val split."""
    root = tmp_path_factory.mktemp("one")
    meta = yaml.safe_load((tiny_dataset / "metadata.yaml").read_text())
    (root / "metadata.yaml").write_text(yaml.safe_dump({"03001627": meta["03001627"]}))
    shutil.copytree(tiny_dataset / "03001627" / "ell00", root / "03001627" / "ell00")
    for split in ("train", "val", "test"):
        (root / "03001627" / f"{split}.lst").write_text("ell00")
    return root


@pytest.fixture(scope="module")
def r2n2_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 steps on the tiny dataset (frozen random trunk through the feature cache)."""
    out = tmp_path_factory.mktemp("r2n2") / "run"
    result = train(_cfg("steps=60", "val_every=30", "checkpoint_every=30"), data_root=tiny_dataset, out_dir=out)
    assert result.stopped == "done" and result.best_path is not None
    return out


def test_overfits_one_model_to_voxel_iou_0_9(one_model: Path, tmp_path: Path) -> None:
    result = train(_cfg("steps=200", "val_every=100", "checkpoint_every=100"), data_root=one_model,
                   out_dir=tmp_path / "run")
    assert result.last_val["iou_1view"] >= 0.9 and result.last_val["iou_3view"] >= 0.9, result.last_val
    # the unit was trained on views in random order: every order of the 3 views scores alike
    from recon_cli.io.checkpoint import load_checkpoint
    from recon_cli.training.sampler import _collate

    model, cfg, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    items = VoxelItems(one_model, "val", voxel=cfg.voxel, image_size=64, views_per_model=0)
    ious = []
    for order in itertools.permutations(range(3)):
        batch = _collate([items.item(0, list(order))])
        with torch.no_grad():
            logits = model(batch["views"], batch["mask"])
        ious.append(float(voxel_iou(logits, batch["voxels"], np.log(0.4 / 0.6))[0]))
    assert min(ious) >= 0.85 and max(ious) - min(ious) < 0.05, ious


def test_training_writes_a_run_and_resumes_exactly(tiny_dataset: Path, r2n2_run: Path, tmp_path: Path) -> None:
    log = [json.loads(line) for line in (r2n2_run / "log.jsonl").read_text().splitlines()]
    vals = [r for r in log if "val/iou" in r]
    assert [r["step"] for r in vals] == [30, 60] and {"val/iou_1view", "val/iou_3view"} <= set(vals[0])
    assert torch.load(r2n2_run / "best.pt", weights_only=True)["model"] == "r2n2"
    losses: dict[str, dict[int, float]] = {"full": {}, "cut": {}}

    def record(name: str):
        return lambda e: losses[name].__setitem__(e["step"], e["loss"]) if e["type"] == "step" else None

    cfg = _cfg("steps=4", "val_every=100", "checkpoint_every=100")
    train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "full", on_event=record("full"))
    part = train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "cut", max_steps=2, on_event=record("cut"))
    assert part.step == 2
    train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "cut", resume=True, on_event=record("cut"))
    assert losses["cut"] == losses["full"] and sorted(losses["full"]) == [1, 2, 3, 4]


def test_training_through_images_when_the_trunk_trains(tiny_dataset: Path, tmp_path: Path) -> None:
    cfg = _cfg("model.image_encoder.trainable_blocks=-1", "steps=3", "val_every=3")
    result = train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "run")
    assert result.stopped == "done" and np.isfinite(result.last_loss) and "iou_3view" in result.last_val
    key = "encoder.blocks.0.conv1.weight"
    torch.manual_seed(cfg.seed)  # the trainer builds its model right after seeding
    start = build_model(cfg.model).state_dict()[key]
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["state_dict"][key]
    assert not torch.equal(trained, start)  # the trunk trained (from images, not the cache)


def test_a_frozen_trunk_stays_as_initialised(r2n2_run: Path) -> None:
    cfg = _cfg()
    key = "encoder.blocks.0.conv1.weight"
    torch.manual_seed(cfg.seed)
    start = build_model(cfg.model).state_dict()[key]
    assert torch.equal(torch.load(r2n2_run / "last.pt", weights_only=True)["state_dict"][key], start)


# ------------------------------------------------------------------------------- CLI


def test_cli_reconstruct_and_eval_with_r2n2_weights(tiny_dataset: Path, r2n2_run: Path, tmp_path: Path) -> None:
    weights = str(r2n2_run / "best.pt")
    img = tiny_dataset / "03001627" / "ell01" / "img_choy2016"
    res = runner.invoke(app, ["reconstruct", str(img / "000.jpg"), "--model", "r2n2", "--weights", weights,
                              "-o", str(tmp_path / "one.obj"), "--threshold", "0.01", "--json"])
    assert res.exit_code == 0, res.output
    import trimesh

    mesh = trimesh.load(tmp_path / "one.obj")
    assert len(mesh.faces) and np.all(np.abs(mesh.vertices) <= 0.5 + 1e-6)
    res = runner.invoke(app, ["reconstruct", str(img / "000.jpg"), str(img / "001.jpg"), "--fuse", "--model",
                              "r2n2", "--weights", weights, "-o", str(tmp_path / "fused.ply"), "--threshold", "0.01"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fused.ply").is_file()
    res = runner.invoke(app, ["reconstruct", str(img / "000.jpg"), "--weights", weights, "-o",
                              str(tmp_path / "x.obj")])
    assert res.exit_code == 1 and "use it with --model r2n2" in res.output
    res = runner.invoke(app, ["eval", "--data", str(tiny_dataset), "--model", "r2n2", "--weights", weights,
                              "--views", "2", "--threshold", "0.01", "-o", str(tmp_path / "ev"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["settings"]["views"] == 2 and summary["settings"]["stages"] == "r2n2"
    assert 0.0 <= summary["class_mean"]["voxel_iou"] <= 1.0
    from recon_cli.evaluate import read_results

    rows = read_results(tmp_path / "ev" / "objects.csv")
    assert len(rows) == 4 and all(r.voxel_iou is not None for r in rows)


def test_cli_train_r2n2_dry_run() -> None:
    res = runner.invoke(app, ["train", "--model", "r2n2", "--data", ".", "--out", "x", "--dry-run"])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load(res.stdout)
    assert cfg["model"]["voxel"]["hidden"] == 128 and cfg["model"]["image_encoder"]["name"] == "efficientnet-lite0"
    assert cfg["threshold"] == 0.4


def test_python_api_loads_the_voxel_model(tiny_dataset: Path, r2n2_run: Path) -> None:
    from recon_cli.api import load_model

    model = load_model(r2n2_run / "best.pt", model="r2n2", threshold=0.01, threads=1)
    assert model.stages == "r2n2" and model.image_size == 64
    img = tiny_dataset / "04379243" / "box01" / "img_choy2016"
    result = model.reconstruct([img / "000.jpg", img / "002.jpg"], fuse=True, return_details=True)
    assert len(result.mesh.faces) > 0 and result.stage1_mesh is None
    from recon_cli.errors import InputError

    with pytest.raises(InputError, match="not point clouds"):
        model.reconstruct_points(np.random.default_rng(0).normal(size=(100, 3)))


def test_other_commands_refuse_r2n2_weights_in_one_line(r2n2_run: Path, tmp_path: Path) -> None:
    weights = str(r2n2_run / "best.pt")
    res = runner.invoke(app, ["export-onnx", "-w", weights, "-o", str(tmp_path / "onnx")])
    assert res.exit_code == 1 and "voxel" in res.output and not (tmp_path / "onnx").exists()
    res = runner.invoke(app, ["reconstruct", "--points", weights, "--model", "r2n2", "-o", str(tmp_path / "x.obj")])
    assert res.exit_code != 0 and "r2n2 model reconstructs from photos" in res.output


def test_shipped_r2n2_weights_reconstruct_every_readme_example(tmp_path: Path) -> None:
    """`recon reconstruct --model r2n2` works out of the box: weights/r2n2.pt, every example image."""
    repo = Path(__file__).resolve().parents[1]
    images = [str(repo / "examples" / f"{n}.png") for n in ("airplane", "car", "chair", "lamp", "sofa", "table",
                                                             "vessel")]
    res = runner.invoke(app, ["reconstruct", *images, "--model", "r2n2", "--out-dir", str(tmp_path), "--json",
                              "--threads", "1"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["error"] for r in doc["results"]] == [None] * len(images)
    assert all(r["faces"] > 100 for r in doc["results"])
    assert doc["summary"]["weights"].endswith("r2n2.pt") and doc["summary"]["model"] == "r2n2"
