"""A small learned object-mask network (``--segment model``), trained on photo-like renders.

The network is a compact U-Net (5 resolutions, 8-64 channels, about 0.23 M
parameters) on a :data:`NET_SIZE` square input: the photo resized to fit and
edge-padded, plus two coordinate channels (so it can learn that objects sit
near the middle of photos). It predicts one logit per pixel: object or not.

Training data costs nothing to label: :func:`recon_cli.data.photos.photo_like`
renders procedural models (``recon_cli.data.synth``) over randomised
backgrounds of the training families with random light, camera, shadow, blur,
noise and JPEG, and returns the exact mask. The held-out background families
are never seen, so the photo-like test set measures generalisation.

Train: ``python -m recon_cli.io.masknet -o weights/masknet.pt --minutes 30``
(the command and the log go into ``weights/MASKNET.md``). The weights are
loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from recon_cli.errors import CheckpointError

#: Side of the square network input.
NET_SIZE: int = 96
#: File name of the shipped weights, looked for next to the D-OccNet weights.
MASKNET_WEIGHTS = "masknet.pt"
_FORMAT = 1


def build_net(width: int = 8) -> Any:
    """The U-Net (torch.nn.Module); input (B, 5, S, S) = RGB in [-0.5, 0.5] + x, y in [-1, 1]."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = [width, width * 2, width * 4, width * 6, width * 8]
            self.downs = nn.ModuleList([block(5, c[0])] + [block(c[i], c[i + 1]) for i in range(4)])
            self.ups = nn.ModuleList([block(c[i + 1] + c[i], c[i]) for i in reversed(range(4))])
            self.head = nn.Conv2d(c[0], 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            for i, down in enumerate(self.downs):
                x = down(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            skips.pop()
            for up in self.ups:
                skip = skips.pop()
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = up(torch.cat([x, skip], dim=1))
            return self.head(x)[:, 0]  # (B, S, S) logits

    return UNet()


def _coords(size: int) -> np.ndarray:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([xx, yy])  # (2, S, S)


def to_input(rgb: np.ndarray, size: int = NET_SIZE) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(5, S, S) float32 network input of a photo (H, W, 3) uint8, and the box (top, left, h, w) it occupies."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0))
    top, left = (size - nh) // 2, (size - nw) // 2
    padded = np.pad(small, ((top, size - nh - top), (left, size - nw - left), (0, 0)), mode="edge")
    x = np.concatenate([padded.transpose(2, 0, 1).astype(np.float32) / 255.0 - 0.5, _coords(size)])
    return x, (top, left, nh, nw)


def default_masknet_path() -> Path | None:
    """The shipped mask-network weights, or None when they are not installed."""
    from recon_cli.reconstruct import default_weight_dirs

    for folder in default_weight_dirs():
        if (folder / MASKNET_WEIGHTS).is_file():
            return folder / MASKNET_WEIGHTS
    return None


@lru_cache(maxsize=2)
def load_masknet(path: str) -> Any:
    """The network in eval mode from a checkpoint written by :func:`train` (cached per path)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT or ckpt.get("kind") != "masknet":
            raise CheckpointError("not a mask-network checkpoint (format 1)", path=path)
        net = build_net(int(ckpt["width"]))
        net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    except CheckpointError:
        raise
    except Exception as exc:  # truncated or foreign files
        raise CheckpointError(f"cannot load the mask network ({type(exc).__name__}: {exc})".splitlines()[0],
                              path=path) from exc
    return net.eval()


def predict(rgb: np.ndarray, path: str | Path) -> np.ndarray:
    """Object probability (H, W) float32 of a photo (H, W, 3) uint8."""
    import torch
    from PIL import Image

    net = load_masknet(str(path))
    x, (top, left, nh, nw) = to_input(rgb)
    with torch.inference_mode():
        prob = torch.sigmoid(net(torch.from_numpy(x)[None]))[0].numpy()  # (S, S)
    crop = prob[top:top + nh, left:left + nw]
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(crop.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))


# --------------------------------------------------------------------------- training


def make_pool(n: int, *, seed: int, categories: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training samples: inputs (n, 5, S, S) float16 and masks (n, S, S) uint8 (train families only)."""
    from recon_cli.data.categories import SYNSETS
    from recon_cli.data.photos import PhotoOptions, photo_like, sample_rng
    from recon_cli.data.synth import generate

    names = categories or list(SYNSETS.values())
    options = PhotoOptions(size=NET_SIZE)
    xs = np.empty((n, 5, NET_SIZE, NET_SIZE), np.float16)
    ys = np.empty((n, NET_SIZE, NET_SIZE), np.uint8)
    meshes: dict[int, Any] = {}
    for i in range(n):
        key = i // 12  # twelve views per model
        if key not in meshes:
            meshes = {key: generate(names[key % len(names)], 1_000_000 + seed * 100_000 + key)}
        sample = photo_like(meshes[key], sample_rng(seed, i, "train"), split="train", options=options, seed=i)
        x, (top, left, nh, nw) = to_input(sample.photo)
        m = np.zeros((NET_SIZE, NET_SIZE), np.uint8)
        from PIL import Image

        m[top:top + nh, left:left + nw] = np.asarray(
            Image.fromarray(sample.alpha).resize((nw, nh), Image.Resampling.BILINEAR)) > 0.5
        xs[i], ys[i] = x, m
    return xs, ys


def train(out: Path, *, pool: int = 3000, minutes: float = 30.0, batch: int = 16, lr: float = 2e-3,
          width: int = 8, seed: int = 0, log: Path | None = None, init: Path | None = None,
          save_every: int = 200) -> dict[str, Any]:
    """Train on a pool of photo-like samples for ``minutes`` (from ``init``'s weights if given);
    save float16 weights to ``out`` every ``save_every`` steps and at the end."""
    import torch

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    xs, ys = make_pool(pool, seed=seed)
    pool_s = time.perf_counter() - t0
    net = build_net(width)
    if init is not None:
        net.load_state_dict(load_masknet(str(init)).state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    x_all, y_all = torch.from_numpy(xs), torch.from_numpy(ys)
    start, step, history = time.perf_counter(), 0, []
    budget = minutes * 60.0
    while (elapsed := time.perf_counter() - start) < budget:
        frac = elapsed / budget
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + np.cos(np.pi * frac))
        idx = torch.from_numpy(rng.integers(0, len(xs), batch))
        x, y = x_all[idx].float(), y_all[idx].float()
        if rng.uniform() < 0.5:  # horizontal flip (the x coordinate channel stays put)
            x = torch.cat([x[:, :3].flip(-1), x[:, 3:]], dim=1)
            y = y.flip(-1)
        logits = net(x)
        prob = torch.sigmoid(logits)
        dice = 1.0 - (2 * (prob * y).sum((1, 2)) + 1) / (prob.sum((1, 2)) + y.sum((1, 2)) + 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + dice.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            with torch.no_grad():
                pred = logits > 0
                iou = ((pred & (y > 0.5)).sum((1, 2)) / ((pred | (y > 0.5)).sum((1, 2)).clamp(min=1))).mean()
            history.append({"step": step, "seconds": round(elapsed, 1), "loss": round(float(loss.detach()), 4),
                            "batch_iou": round(float(iou), 4)})
            if log is not None:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(history[-1]) + "\n")
        if step % save_every == 0:
            _save(net, out, width=width, steps=step, batch=batch, pool=pool, seed=seed, minutes=minutes)
    net.train(False)
    doc = _save(net, out, width=width, steps=step, batch=batch, pool=pool, seed=seed, minutes=minutes,
                pool_seconds=round(pool_s, 1), init=None if init is None else str(init))
    return {**doc, "history_tail": history[-5:]}


def _save(net: Any, out: Path, **info: Any) -> dict[str, Any]:
    import torch

    from recon_cli.io.atomic import atomic_path

    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    doc = {"format": _FORMAT, "kind": "masknet", "net_size": NET_SIZE, **info}
    with atomic_path(out) as tmp:
        torch.save({**doc, "state_dict": state}, tmp)
    return doc


def main(argv: list[str] | None = None) -> int:
    """``python -m recon_cli.io.masknet -o weights/masknet.pt --minutes 30``."""
    import torch

    parser = argparse.ArgumentParser(description="Train the mask network on photo-like renders.")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--pool", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None)
    parser.add_argument("--init", type=Path, default=None, help="start from these weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    info = train(args.out, pool=args.pool, minutes=args.minutes, batch=args.batch, width=args.width, seed=args.seed,
                 log=args.log, init=args.init)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
