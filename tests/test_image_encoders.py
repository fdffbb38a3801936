"""Image encoders: EfficientNet-Lite0 against its reference implementation, ResNet18 init from
torchvision naming, frozen trunk units, the feature cache, near-surface points and bf16 training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recon_cli.errors import CheckpointError, ConfigError
from recon_cli.models import build_image_encoder, build_model, init_image_encoder
from recon_cli.models.config import ImageEncoderConfig, ModelConfig
from recon_cli.models.efficientnet import (
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite0,
    convert_lukemelas_state_dict,
    load_imagenet_weights,
    packaged_weights_path,
    same_padding,
)
from recon_cli.training import resolve_config, train
from recon_cli.training.features import build_feature_cache, cache_dir, cache_spec, load_feature_cache
from recon_cli.training.near_surface import NearSurfaceItems, build_near_surface, near_surface_points

#: Tiny widths for training runs (EfficientNet at 32 px: a few ms per image).
LITE_SMALL = [
    "model.image_encoder={name: efficientnet-lite0, c_dim: 16, image_size: 32, trainable_blocks: 0}",
    "model.decoder1={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.pointnet={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.decoder2={c_dim: 16, hidden: 16, n_blocks: 1}",
    "model.n_input_points=64", "data.n_points=256", "data.val_n_points=512", "data.workers=0",
    "data.val_max_models=4", "optim.batch_size=4", "optim.lr=0.003", "device=cpu", "log_every=5",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    return torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)


# ------------------------------------------------------------------ EfficientNet-Lite0


def test_same_padding_is_tensorflow_same() -> None:
    assert same_padding(224, 3, 2) == (0, 1)  # even size: the extra pixel goes after
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(137, 3, 2) == (1, 1)  # odd size: symmetric
    assert same_padding(7, 3, 1) == (1, 1)


def test_packaged_weights_load_by_key_mapping(imagenet_state) -> None:
    assert len(imagenet_state) == 296 and "_fc.weight" in imagenet_state
    converted = convert_lukemelas_state_dict(imagenet_state)
    model = EfficientNetLite0()
    assert set(converted) == set(model.state_dict())  # every tensor maps, none left over (the classifier is dropped)
    load_imagenet_weights(model)
    assert torch.equal(model.blocks[15].project.conv.weight, imagenet_state["_blocks.15._project_conv.weight"])
    with pytest.raises(ConfigError, match="unexpected"):
        convert_lukemelas_state_dict({"_blocks.0._se_reduce.weight": torch.zeros(1)})


@pytest.mark.parametrize("size", [224, 137])
def test_lite0_equals_reference_implementation(imagenet_state, size: int) -> None:
    """Same feature map and pooled feature as efficientnet_lite_pytorch (test dependency) on random images."""
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_pkg.EfficientNet.from_name("efficientnet-lite0", image_size=size)
    reference.load_state_dict(imagenet_state)
    reference.eval()
    encoder = build_image_encoder(ImageEncoderConfig(name="efficientnet-lite0", c_dim=8)).eval()
    load_imagenet_weights(encoder.backbone)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        pooled, fmap = encoder.features(x)
        ref_map = reference.extract_features((x - LITE_MEAN) / LITE_STD)  # the reference normalises outside
        ref_logits = reference(x.sub(LITE_MEAN).div(LITE_STD))
    assert fmap.shape == ref_map.shape == (2, 1280, (size + 31) // 32, (size + 31) // 32)
    assert torch.allclose(fmap, ref_map, atol=1e-4)
    assert torch.allclose(pooled, ref_map.mean(dim=(2, 3)), atol=1e-4)
    logits = pooled @ imagenet_state["_fc.weight"].t() + imagenet_state["_fc.bias"]
    assert torch.allclose(logits, ref_logits, atol=1e-3)
    assert encoder(x).shape == (2, 8)


def test_unknown_encoder_and_imagenet_for_resnet_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="valid: resnet18, efficientnet-lite0"):
        ImageEncoderConfig(name="vgg")
    with pytest.raises(ConfigError, match="only shipped for efficientnet-lite0"):
        ImageEncoderConfig(name="resnet18", init="imagenet")


# ------------------------------------------------------------- ResNet18 from torchvision naming


def _torchvision_resnet18_state(rng: torch.Generator, width: int = 64) -> dict[str, torch.Tensor]:
    """A state dict in torchvision's ResNet18 key naming, written from the architecture (not our module)."""
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, c_out: int, c_in: int, k: int) -> None:
        state[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=rng)

    def bn(name: str, c: int) -> None:
        state[f"{name}.weight"] = torch.rand(c, generator=rng) + 0.5
        state[f"{name}.bias"] = torch.randn(c, generator=rng)
        state[f"{name}.running_mean"] = torch.randn(c, generator=rng)
        state[f"{name}.running_var"] = torch.rand(c, generator=rng) + 0.5
        state[f"{name}.num_batches_tracked"] = torch.tensor(1000)

    conv("conv1", width, 3, 7)
    bn("bn1", width)
    c_in = width
    for layer, c in enumerate([width, 2 * width, 4 * width, 8 * width], start=1):
        for block in (0, 1):
            prefix = f"layer{layer}.{block}"
            conv(f"{prefix}.conv1", c, c_in if block == 0 else c, 3)
            bn(f"{prefix}.bn1", c)
            conv(f"{prefix}.conv2", c, c, 3)
            bn(f"{prefix}.bn2", c)
            if block == 0 and layer > 1:
                conv(f"{prefix}.downsample.0", c, c_in, 1)
                bn(f"{prefix}.downsample.1", c)
        c_in = c
    state["fc.weight"] = torch.randn(1000, 8 * width, generator=rng)
    state["fc.bias"] = torch.randn(1000, generator=rng)
    return state


def test_resnet18_init_from_torchvision_named_state_dict(tmp_path: Path) -> None:
    state = _torchvision_resnet18_state(torch.Generator().manual_seed(0))
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    cfg = ImageEncoderConfig(c_dim=32, init=str(path))
    encoder = build_image_encoder(cfg)
    fc_before = encoder.fc.weight.clone()
    init_image_encoder(encoder, cfg)
    own = encoder.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    assert torch.equal(encoder.fc.weight, fc_before)  # the 1000-class head is not ours

    # through the config layers: --set model.image_encoder.init=PATH, then a training run starts from it
    cfg_full = resolve_config(model="onet", overrides=[f"model.image_encoder.init={path}"])
    assert cfg_full.model.image_encoder.init == str(path)

    narrow = ImageEncoderConfig(c_dim=32, width=32, init=str(path))
    with pytest.raises(CheckpointError, match="width=64"):
        init_image_encoder(build_image_encoder(narrow), narrow)
    del state["layer3.0.downsample.0.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing layer3.0.downsample.0.weight"):
        init_image_encoder(build_image_encoder(cfg), cfg)
    with pytest.raises(ConfigError, match="no such state-dict file"):
        bad = ImageEncoderConfig(init=str(tmp_path / "nope.pth"))
        init_image_encoder(build_image_encoder(bad), bad)


def test_trainable_blocks_freeze_the_first_units() -> None:
    model = build_model(ModelConfig(name="onet", image_encoder=ImageEncoderConfig(
        name="efficientnet-lite0", c_dim=256, image_size=32, trainable_blocks=2)))
    encoder = model.stage(1).encoder
    assert len(encoder.units()) == 18  # stem, 16 MBConv blocks, head
    assert len(encoder.frozen_units()) == 16
    model.train()
    assert not encoder.backbone.blocks[14].depthwise.bn.training  # frozen: BatchNorm statistics fixed
    assert encoder.backbone.blocks[15].depthwise.bn.training and encoder.backbone.head.bn.training
    frozen = {id(p) for p in encoder.frozen_parameters()}
    assert id(encoder.backbone.stem.conv.weight) in frozen and id(encoder.backbone.head.conv.weight) not in frozen


@pytest.mark.parametrize("cache", [True, False])
def test_training_keeps_frozen_units_and_trains_the_last(tiny_dataset: Path, tmp_path: Path, cache: bool) -> None:
    """With the cache the trained unit runs on cached activations, without it on images: same outcome."""
    cfg = resolve_config(model="onet", overrides=[
        *LITE_SMALL, "model.image_encoder.trainable_blocks=1", "model.image_encoder.init=imagenet",
        "steps=3", "val_every=3", f"data.feature_cache={str(cache).lower()}",
        f"data.feature_cache_dir={tmp_path / 'cache'}"])
    train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "run")
    from recon_cli.io.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    reference = EfficientNetLite0()
    load_imagenet_weights(reference)
    backbone = model.stage(1).encoder.backbone
    for name in ("stem.conv.weight", "stem.bn.running_mean", "blocks.15.project.conv.weight",
                 "blocks.15.project.bn.running_var"):
        assert torch.equal(backbone.state_dict()[name], reference.state_dict()[name]), name
    assert not torch.equal(backbone.head.conv.weight, reference.head.conv.weight)  # the one trained unit moved
    assert not torch.equal(backbone.head.bn.running_mean, reference.head.bn.running_mean)
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == (14 if cache else 0)
    if cache:  # the activation entering the head: (views, variants, 320, 1, 1) at 32 px
        assert np.load(cached[0]).shape[2:] == (320, 1, 1)


def test_fine_tuning_starts_from_weights_trained_frozen(tiny_dataset: Path, tmp_path: Path) -> None:
    """init_weights accepts a checkpoint that differs only in training-only encoder settings
    (trainable_blocks, init), and the run starts from exactly its weights."""
    base = [*LITE_SMALL, "model.image_encoder.init=imagenet", "val_every=100",
            f"data.feature_cache_dir={tmp_path / 'cache'}"]
    frozen = train(resolve_config(model="onet", overrides=[*base, "steps=2"]), data_root=tiny_dataset,
                   out_dir=tmp_path / "frozen")
    tuned = train(resolve_config(model="onet", overrides=[
        *base, "steps=1", "optim.lr=1e-12", "model.image_encoder.trainable_blocks=2",
        "model.image_encoder.init=''", f"init_weights={frozen.last_path}"]), data_root=tiny_dataset,
        out_dir=tmp_path / "tuned")
    from recon_cli.io.checkpoint import load_checkpoint

    a, _, _ = load_checkpoint(frozen.last_path)
    b, cfg, _ = load_checkpoint(tuned.last_path)
    assert cfg.image_encoder.trainable_blocks == 2
    for name in ("fc.weight", "backbone.blocks.3.project.conv.weight", "backbone.head.conv.weight"):
        assert torch.allclose(a.stage1.encoder.state_dict()[name], b.stage1.encoder.state_dict()[name], atol=1e-6)
    with pytest.raises(CheckpointError, match="decoder1.hidden"):
        train(resolve_config(model="onet", overrides=[*base, "steps=1", "model.decoder1.hidden=8",
                                                      f"init_weights={frozen.last_path}"]),
              data_root=tiny_dataset, out_dir=tmp_path / "bad")


@pytest.mark.parametrize("name", ["efficientnet-lite0", "resnet18", "r2n2-cnn"])
def test_cached_tail_gives_the_encoders_code(name: str) -> None:
    """cache_input then from_cached == forward, for every trainable_blocks the cache can serve."""
    torch.manual_seed(0)
    cfg = ImageEncoderConfig(name=name, c_dim=8, image_size=64, **({} if name == "efficientnet-lite0" else {"width": 8}))
    encoder = build_image_encoder(cfg).eval()
    for m in encoder.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        expected = encoder(images)
        n = len(encoder.units())
        for tail in range(n):
            encoder.trainable_blocks = tail
            cached = encoder.cache_input(images)
            assert cached.dim() == (2 if tail == 0 else 4)
            assert torch.allclose(encoder.from_cached(cached), expected, atol=1e-5, rtol=1e-4), tail
    for bad in (-1, n):
        encoder.trainable_blocks = bad
        with pytest.raises(ConfigError, match="frozen trunk units"):
            encoder.cache_input(images)


def test_tail_cache_key_ignores_the_trained_units() -> None:
    """Fine-tuned tail weights do not invalidate the cache; frozen weights and the tail length do."""
    encoder = build_image_encoder(ImageEncoderConfig(name="efficientnet-lite0", c_dim=8, image_size=32,
                                                     trainable_blocks=0))
    pooled = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0)
    assert "tail_units" not in pooled  # frozen-trunk caches keep their key
    encoder.trainable_blocks = 2
    spec = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0)
    assert spec["tail_units"] == 2 and spec["weights_sha256"] != pooled["weights_sha256"]
    with torch.no_grad():
        encoder.backbone.head.conv.weight.add_(1.0)  # trained units
        encoder.backbone.blocks[15].project.bn.running_mean.add_(1.0)
    assert cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0) == spec
    with torch.no_grad():
        encoder.backbone.blocks[14].project.conv.weight.add_(1.0)  # a frozen unit
    assert cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0) != spec


# ------------------------------------------------------------------------ feature cache


def _train_models(root: Path) -> list[tuple[str, str]]:
    from recon_cli.data.shapenet import ShapeNetDataset

    return ShapeNetDataset(root, "train", with_points=False, with_pointcloud=False).models


def test_feature_cache_keys_resumes_and_matches_the_encoder(tiny_dataset: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = build_image_encoder(ImageEncoderConfig(name="efficientnet-lite0", c_dim=8, image_size=32,
                                                     trainable_blocks=0)).eval()
    load_imagenet_weights(encoder.backbone)
    models = _train_models(tiny_dataset)[:3]
    spec = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=2, seed=0)
    base = tmp_path / "features"
    folder = build_feature_cache(tiny_dataset, models, encoder, spec, base=base)
    assert json.loads((folder / "meta.json").read_text()) == spec
    files = sorted(folder.rglob("*.npy"))
    assert len(files) == 3
    feats, counts = load_feature_cache(folder, models)
    assert feats.shape == (3, 4, 2, 1280) and feats.dtype == torch.float16 and counts.tolist() == [4, 4, 4]

    from recon_cli.data.shapenet import load_view

    with torch.no_grad():
        direct = encoder.features(load_view(tiny_dataset / models[1][0] / models[1][1], 2, size=32)[None])[0][0]
    assert direct.abs().max() > 0.5
    assert torch.allclose(feats[1, 2, 0].float(), direct, atol=2e-3, rtol=2e-3)  # variant 0: the whole view
    assert (feats[1, 2, 1].float() - direct).abs().max() > 0.05  # variant 1: a crop

    # resumable: existing files are kept, a missing one is rebuilt alone
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    files[0].unlink()
    build_feature_cache(tiny_dataset, models, encoder, spec, base=base)
    assert files[0].is_file()
    assert all(f.stat().st_mtime_ns == mtimes[f] for f in files[1:])

    # fewer views: evenly spaced ones, in their own folder
    few = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0, views=2)
    few_feats, few_counts = load_feature_cache(build_feature_cache(tiny_dataset, models, encoder, few, base=base),
                                               models)
    assert few_feats.shape == (3, 2, 1, 1280) and few_counts.tolist() == [2, 2, 2]
    assert torch.equal(few_feats[1, 1, 0], feats[1, 2, 0])  # views 0 and 2 of 4

    # photo-like variants come after the white ones, in their own folder; white variants unchanged
    photo = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=2, seed=0,
                       photo_variants=1)
    assert cache_dir(tiny_dataset, photo, base) != folder
    photo_feats, _ = load_feature_cache(build_feature_cache(tiny_dataset, models, encoder, photo, base=base), models)
    assert photo_feats.shape == (3, 4, 3, 1280)
    assert torch.equal(photo_feats[:, :, :2], feats)
    assert (photo_feats[1, 2, 2].float() - direct).abs().max() > 0.05

    # invalidation: other weights or other preprocessing -> another folder
    with torch.no_grad():
        encoder.backbone.head.bn.running_mean += 1.0
    spec_weights = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=2, seed=0)
    spec_size = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=48, variants=2, seed=0)
    dirs = {cache_dir(tiny_dataset, s, base) for s in (spec, spec_weights, spec_size)}
    assert len(dirs) == 3
    encoder.fc.weight.data.zero_()  # the trained linear layer is not part of the key
    assert cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=2, seed=0) == spec_weights


def test_training_from_cached_features(tiny_dataset: Path, tmp_path: Path) -> None:
    events: list[dict] = []
    cfg = resolve_config(model="doccnet", overrides=[
        *LITE_SMALL, "steps=12", "val_every=12", "precision=bf16",
        f"data.feature_cache_dir={tmp_path / 'cache'}"])
    result = train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "run", on_event=events.append)
    assert result.stopped == "done" and result.last_val is not None and 0.0 <= result.last_val["iou1"] <= 1.0
    caches = [e for e in events if e["type"] == "cache" and e.get("what") == "features"]
    assert caches[-1]["done"] == caches[-1]["total"] == 14
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 14
    # a second run finds the cache complete (no encoding), and continues to train the linear layer only
    events.clear()
    train(cfg, data_root=tiny_dataset, out_dir=tmp_path / "run2", on_event=events.append)
    from recon_cli.io.checkpoint import load_checkpoint

    a, _, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    b, _, _ = load_checkpoint(tmp_path / "run2" / "last.pt")
    assert torch.equal(a.stage1.encoder.backbone.head.conv.weight, b.stage1.encoder.backbone.head.conv.weight)
    assert torch.equal(a.stage1.encoder.fc.weight, b.stage1.encoder.fc.weight)  # deterministic with the cache too


def test_bf16_autocast_on_cpu_reaches_the_decoder(tiny_dataset: Path, tmp_path: Path) -> None:
    """precision=bf16 runs the decoders' linear layers in bfloat16 in training; fp32 opts out; auto
    uses bf16 only on CPUs with native bf16 instructions."""
    from recon_cli.runtime.decoder_kernel import native_bf16
    from recon_cli.training.loop import Trainer

    original = Trainer._train_step
    for precision in ("bf16", "fp32", "auto"):
        seen: dict[str, set] = {"train": set()}

        def hook(module, inputs, output, seen=seen) -> None:  # noqa: ANN001
            seen["train"].add(output.dtype)

        def patched(self, net, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            for block in net.model.stage(1).decoder.blocks:
                block.fc_0._forward_hooks.clear()
                block.fc_0.register_forward_hook(hook)
            return original(self, net, *args, **kwargs)

        Trainer._train_step = patched
        try:
            cfg = resolve_config(model="onet", overrides=[
                *LITE_SMALL, "steps=2", "val_every=2", f"precision={precision}",
                f"data.feature_cache_dir={tmp_path / 'cache'}"])
            result = train(cfg, data_root=tiny_dataset, out_dir=tmp_path / precision)
        finally:
            Trainer._train_step = original
        bf16 = precision == "bf16" or (precision == "auto" and native_bf16())
        expected = torch.bfloat16 if bf16 else torch.float32
        assert seen["train"] == {expected}, precision
        assert result.last_val is not None


# -------------------------------------------------------------------- near-surface points


def test_near_surface_labels_agree_with_the_inside_test(tiny_dataset: Path) -> None:
    """On ellipsoids and boxes: points well inside/outside get the analytic label; agreement with points.npz."""
    model_dir = next(tiny_dataset.glob("*/box00"))
    q, inside, agreement = near_surface_points(model_dir, count=4096, sigma=0.01, seed=0, key="box00")
    assert q.shape == (4096, 3) and inside.dtype == bool
    assert agreement > 0.95
    from recon_cli.data.layout import load_pointcloud

    surface, _ = load_pointcloud(model_dir)
    half = np.abs(surface).max(axis=0)  # the box's half extents
    margin = np.min(half - np.abs(q), axis=1)  # > 0 inside the box, < 0 outside
    clear = np.abs(margin) > 0.004
    assert clear.sum() > 1000
    assert np.mean(inside[clear] == (margin[clear] > 0)) > 0.99
    assert 0.3 < inside.mean() < 0.7


def test_near_surface_items_replace_a_share(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    from recon_cli.data.shapenet import ShapeNetDataset

    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)  # the cache is written beside the dataset
    base = ShapeNetDataset(root, "train", n_points=200, with_image=False, with_pointcloud=False)
    points, labels, agreement = build_near_surface(root, base.models, count=1000, sigma=0.01, seed=0)
    assert len(points) == len(base) and all(a > 0.9 for a in agreement)
    assert len(list((root / ".near_surface").rglob("*.npz"))) == len(base)
    items = NearSurfaceItems(base, points, labels, share=0.25)
    torch.manual_seed(0)
    item = items[3]
    near = points[3].float()
    first = item["points"][:50]
    dist = torch.cdist(first, near).min(dim=1).values
    assert torch.all(dist < 1e-6)  # the first 25% come from the near-surface set
    assert item["points"].shape == (200, 3) and item["occ"].shape == (200,)


def test_cli_data_features(tiny_dataset: Path, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from recon_cli.cli.app import app

    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    runner = CliRunner()
    args = ["data", "features", str(root), "--set", "model.image_encoder.image_size=32", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["models"] == 14 and report["spec"]["encoder"] == "efficientnet-lite0"
    assert len(list(Path(report["folder"]).rglob("*.npy"))) == 14
    assert Path(report["folder"]).parent == root / ".features"
    bad = runner.invoke(app, [*args[:-1], "--set", "model.image_encoder.trainable_blocks=-1"])
    assert bad.exit_code == 1 and "frozen trunk" in bad.output


def test_lite_model_exports_to_onnx(tmp_path: Path) -> None:
    """The TF-SAME padding traces into ONNX: onnxruntime gives the torch codes (ImageNet trunk, 40 px)."""
    pytest.importorskip("onnxruntime")
    from recon_cli.runtime.onnx_backend import OnnxBackend
    from recon_cli.runtime.onnx_export import export_onnx
    from recon_cli.runtime.torch_backend import TorchBackend

    cfg = resolve_config(config_file="doccnet-lite", overrides=["model.image_encoder.image_size=40",
                                                                "model.name=onet"])
    model = build_model(cfg.model)
    init_image_encoder(model.stage(1).encoder, cfg.model.image_encoder)
    model.eval()
    export_onnx(model, tmp_path / "onnx")
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    want = torch.as_tensor(TorchBackend(model).encode_image(x))
    got = torch.as_tensor(OnnxBackend(tmp_path / "onnx", device="cpu").encode_image(x))
    assert want.abs().max() > 0.1
    assert torch.allclose(got, want, atol=1e-4)


def test_camera_views_are_cached_apart_and_appended_after_each_models_views(tmp_path: Path) -> None:
    """data.feature_camera_views: photo-like cameras of procedural models, in their own folder, placed
    after each model's render views at load; other models get none; a wrong synth seed fails."""
    import shutil

    from recon_cli.data.render import RenderOptions
    from recon_cli.data.synth import synth_dataset
    from recon_cli.errors import DatasetError
    from recon_cli.training.features import append_views, camera_spec

    root = tmp_path / "ds"
    synth_dataset(root, per_category=3, categories=["chair"], seed=3, render=RenderOptions(n_views=2), n_points=4096)
    models = _train_models(root)
    first = root / models[0][0] / models[0][1]
    shutil.copytree(first, first.parent / "plain_chair")  # a model without a mesh to re-render
    models = [*models, (models[0][0], "plain_chair")]
    torch.manual_seed(0)
    encoder = build_image_encoder(ImageEncoderConfig(name="efficientnet-lite0", c_dim=8, image_size=32,
                                                     trainable_blocks=0)).eval()
    load_imagenet_weights(encoder.backbone)
    spec = cache_spec(encoder, encoder_name="efficientnet-lite0", image_size=32, variants=1, seed=0, photo_variants=1)
    base = tmp_path / "features"
    feats, counts = load_feature_cache(build_feature_cache(root, models, encoder, spec, base=base), models)
    assert feats.shape[1:3] == (2, 2) and counts.tolist() == [2] * len(models)
    cspec = camera_spec(spec, 3, 3)
    cfolder = build_feature_cache(root, models, encoder, cspec, base=base)
    assert cfolder != cache_dir(root, spec, base) and json.loads((cfolder / "meta.json").read_text()) == cspec
    both, both_counts = append_views(feats, counts, cfolder, models)
    assert both_counts.tolist() == [5] * (len(models) - 1) + [2] and both.shape == (len(models), 5, 2, 1280)
    assert torch.equal(both[:, :2], feats)  # the renders' views unchanged, in front
    extra = both[0, 2:].float()
    assert extra.abs().amax(dim=-1).min() > 0.1  # every camera view and variant encoded
    assert (extra[0, 0] - extra[1, 0]).abs().max() > 0.05 and (extra[0, 0] - extra[0, 1]).abs().max() > 0.05
    assert (extra[0, 0] - feats[0, 0, 0].float()).abs().max() > 0.05  # another camera than the render's
    assert not both[-1, 2:].any()
    # deterministic: rebuilt from scratch, the same features
    again = build_feature_cache(root, models, encoder, cspec, base=tmp_path / "again")
    assert torch.equal(append_views(feats, counts, again, models)[0], both)
    with pytest.raises(DatasetError, match="do not match"):
        build_feature_cache(root, models, encoder, camera_spec(spec, 1, 4), base=base)
    # training reads them (``recon train --set data.feature_camera_views=N``)
    events: list[dict] = []
    cfg = resolve_config(model="doccnet", overrides=[
        *LITE_SMALL, "steps=4", "val_every=4", "data.feature_photo_variants=1", "data.feature_camera_views=1",
        "data.feature_camera_synth_seed=3", f"data.feature_cache_dir={tmp_path / 'cache'}"])
    result = train(cfg, data_root=root, out_dir=tmp_path / "run", on_event=events.append)
    assert result.stopped == "done"
    cams = [e for e in events if e["type"] == "cache" and e.get("what") == "camera views"]
    assert cams and cams[-1]["done"] == cams[-1]["total"] == len(models) - 1
