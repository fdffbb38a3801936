"""Reader for the ShapeNet layout of the Occupancy Networks family.

Float16 coordinates are converted to float32 exactly, *without* the 1e-4
Gaussian jitter the reference loader adds (the jitter only breaks ties of
the float16 grid; the occupancy subsample is already random per item).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from recon_cli.data.layout import (
    IMG_DIR, POINTCLOUD_FILE, POINTS_FILE, SPLITS, count_views, load_cameras, load_occupancy, load_pointcloud,
    open_view, read_metadata, read_split, resolve_categories, view_name,
)
from recon_cli.errors import DatasetError, InputError

__all__ = [
    "ShapeNetDataset", "load_occupancy", "load_pointcloud", "load_view", "load_cameras", "count_views",
    "read_split", "read_metadata", "open_view",
]

log = logging.getLogger("recon")


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """(3,size,size) float32 in [0,1] from a PIL image (bilinear resize)."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    arr = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def load_view(model_dir: str | Path, view: int, *, size: int = 224) -> torch.Tensor:
    """Render ``view`` of a model as a (3,size,size) float32 tensor in [0,1] on white."""
    return image_to_tensor(open_view(model_dir, view), size)


def random_crop(image: Image.Image, rng: np.random.Generator, *, scale: tuple[float, float] = (0.75, 1.0)) -> Image.Image:
    """Square crop covering a random share ``scale`` of the area at a random position."""
    w, h = image.size
    share = rng.uniform(*scale)
    side = max(1, int(round(np.sqrt(share) * min(w, h))))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    return image.crop((x0, y0, x0 + side, y0 + side))


class ShapeNetDataset(torch.utils.data.Dataset):
    """Models of one split of a ShapeNet-layout dataset.

    Each item is a dict of float32 tensors: ``image`` (3,S,S) RGB in [0,1] on
    white (not mean/std normalised); ``points`` (n_points,3) and ``occ``
    (n_points,) in {0,1}; ``inputs`` (n_input_points,3) surface points plus
    N(0, input_noise) noise; ``index`` (int) and the strings ``synset`` and
    ``model``.

    ``mode="train"`` draws a random view, random subsamples (from torch's RNG,
    so ``torch.manual_seed`` and DataLoader worker seeding apply) and, with
    ``augment``, a random crop of 75-100% of the image area. ``mode="eval"``
    uses view 0 and subsamples that depend only on ``seed`` and the index.
    ``n_points=0`` returns all occupancy points (no subsample).

    A model whose files are missing at construction is left out of
    ``models`` and recorded in ``skipped`` (synset, model, reason) with a
    warning on the ``recon`` logger. A file found corrupt while loading an
    item is warned about and recorded too, and the next readable model is
    returned instead (deterministic); in DataLoader worker processes such
    late records stay in the worker's copy.
    """

    def __init__(self, root: str | Path, split: str = "train", *, categories: Sequence[str] | None = None,
                 mode: str = "train", n_points: int = 2048, n_input_points: int = 300,
                 input_noise: float = 0.005, image_size: int = 224, with_image: bool = True,
                 with_pointcloud: bool = True, with_points: bool = True, augment: bool = False,
                 seed: int = 0) -> None:
        if split not in SPLITS:
            raise InputError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if mode not in ("train", "eval"):
            raise InputError(f"unknown mode {mode!r}; valid: train, eval")
        self.root = Path(root)
        self.split, self.mode = split, mode
        self.n_points, self.n_input_points, self.input_noise = n_points, n_input_points, input_noise
        self.image_size, self.augment, self.seed = image_size, augment, seed
        self.with_image, self.with_pointcloud, self.with_points = with_image, with_pointcloud, with_points
        self.metadata = read_metadata(self.root)
        self.categories = resolve_categories(self.metadata, categories)
        self.models: list[tuple[str, str]] = []
        self.skipped: list[tuple[str, str, str]] = []
        self._bad: set[int] = set()
        for synset in self.categories:
            for model in read_split(self.root, synset, split):
                reason = self._missing(synset, model)
                if reason:
                    self._skip(synset, model, reason)
                else:
                    self.models.append((synset, model))

    def _required(self) -> list[str]:
        files = []
        if self.with_points:
            files.append(POINTS_FILE)
        if self.with_pointcloud:
            files.append(POINTCLOUD_FILE)
        if self.with_image:
            files.append(f"{IMG_DIR}/{view_name(0)}")
        return files

    def _missing(self, synset: str, model: str) -> str | None:
        model_dir = self.root / synset / model
        if not model_dir.is_dir():
            return "model folder missing"
        for rel in self._required():
            if not (model_dir / rel).is_file():
                return f"missing {rel}"
        return None

    def _skip(self, synset: str, model: str, reason: str) -> None:
        log.warning("skipping model %s/%s: %s", synset, model, reason)
        self.skipped.append((synset, model, reason))

    def __len__(self) -> int:
        return len(self.models)

    def model_dir(self, index: int) -> Path:
        """Folder of model ``index``."""
        synset, model = self.models[index]
        return self.root / synset / model

    def _rng(self, index: int) -> np.random.Generator:
        if self.mode == "eval":
            return np.random.default_rng([self.seed, index])
        draw = int(torch.randint(0, 2**31 - 1, (1,)).item())
        return np.random.default_rng([self.seed, index, draw])

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.models)
        if not -n <= index < n:
            raise IndexError(index)
        index %= n
        for step in range(n):
            current = (index + step) % n
            if current in self._bad:
                continue
            try:
                return self._load(current)
            except DatasetError as exc:
                self._bad.add(current)
                synset, model = self.models[current]
                self._skip(synset, model, exc.message if exc.path is None else f"{exc.path}: {exc.message}")
        raise DatasetError(f"no readable model in split {self.split!r}", path=self.root)

    def _load(self, index: int) -> dict[str, Any]:
        synset, model = self.models[index]
        model_dir = self.root / synset / model
        rng = self._rng(index)
        item: dict[str, Any] = {"index": index, "synset": synset, "model": model}
        if self.with_image:
            item["image"] = self._image(model_dir, rng)
        if self.with_points:
            points, occ = load_occupancy(model_dir)
            if self.n_points > 0:
                pick = rng.integers(0, len(points), self.n_points)
                points, occ = points[pick], occ[pick]
            item["points"] = torch.from_numpy(points)
            item["occ"] = torch.from_numpy(occ.astype(np.float32))
        if self.with_pointcloud:
            surface, _ = load_pointcloud(model_dir)
            pick = rng.choice(len(surface), self.n_input_points, replace=len(surface) < self.n_input_points)
            noisy = surface[pick] + rng.normal(0.0, self.input_noise, (self.n_input_points, 3)).astype(np.float32)
            item["inputs"] = torch.from_numpy(noisy.astype(np.float32))
        return item

    def _image(self, model_dir: Path, rng: np.random.Generator) -> torch.Tensor:
        view = 0
        if self.mode == "train":
            n_views = count_views(model_dir)
            view = int(rng.integers(0, n_views)) if n_views > 0 else 0
        image = open_view(model_dir, view)
        if self.mode == "train" and self.augment:
            image = random_crop(image, rng)
        return image_to_tensor(image, self.image_size)
