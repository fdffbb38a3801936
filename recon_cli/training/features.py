"""Feature cache: a frozen image trunk encodes every view of every training model once.

Layout, beside the dataset (or under ``data.feature_cache_dir``)::

    ROOT/.features/<key>/meta.json                 what the key was made from
    ROOT/.features/<key>/<synset>/<model>.npy      float16 (views, variants, D)

(``views``: every render, or ``data.feature_views`` evenly spaced ones.)

With ``model.image_encoder.trainable_blocks`` = N > 0 the cache holds, instead
of the pooled feature, the activation entering the last N trunk units (float16
(views, variants, C, H, W)); training runs those N units on it with gradients, so
fine-tuning the top of the trunk costs a few convolutions per sample, not a
whole trunk pass.

``key`` is a hash of the trunk's frozen weights (every tensor of its state dict
but the final linear layer and the N trained units) and
of the image preprocessing (encoder name, image size, resize filter, number of
variants, crop range, seed, N, format version): a change of either gives a new
folder, so a stale cache is never read. Each model file is written atomically
and existing ones are kept, so an interrupted run resumes where it stopped.

Variants: variant 0 is the whole view resized (what validation and inference
see); variants 1.. are random crops of 75-100% of the area (the reader's
pixel-space augmentation), each seeded by (seed, model, view, variant). With
``data.feature_photo_variants`` = P, P more variants per view are photo-like
(:func:`recon_cli.data.photos.photo_variant`: the render pasted over a training
background with lighting and camera effects, cut out again with an imperfect
mask and framed as at inference), so training sees what segmented photos give.

Camera views (``data.feature_camera_views`` = E): the renders all look down at
25-30 degrees from one distance and focal length, while photos are taken from
anywhere. E more images per procedural model come from
:func:`recon_cli.data.photos.photo_like` cameras (elevation -5..45 degrees, field
of view 30-60, any framing), each with as many variants as a render: variant 0
on the plain backdrop, the others on training backgrounds cut out with an
imperfect mask, all framed as at inference. They live in their own folder
(``.features/<camera key>/``, keyed by the main cache's key, E, the synth seed
and :data:`CAMERA_FORMAT_VERSION`) and are appended after each model's views at
load; models that are not procedural (no mesh to re-render) get none.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from recon_cli.data.layout import count_views, open_view
from recon_cli.data.shapenet import image_to_tensor, random_crop
from recon_cli.errors import DatasetError
from recon_cli.io.atomic import atomic_path, atomic_write_text
from recon_cli.training.sampler import WrappedItems

FORMAT_VERSION = 1
PHOTO_FORMAT_VERSION = 1  # bump when recon_cli.data.photos.photo_variant changes
SILHOUETTE_POINTS = 40_000  # surface samples projected for a render's silhouette (with its non-white pixels)
CAMERA_FORMAT_VERSION = 1  # bump when the camera views' rendering changes
CROP_SCALE = (0.75, 1.0)
CACHE_DIRNAME = ".features"


def trunk_fingerprint(encoder: nn.Module) -> str:
    """SHA-256 of the encoder's frozen trunk weights: everything but the final linear layer
    and the trunk units trained on top of the cache (:meth:`TrunkFreezing.cache_tail`)."""
    tail = encoder.cache_tail()
    trained = {id(t) for unit in encoder.units()[len(encoder.units()) - tail:] if tail
               for t in unit.state_dict(keep_vars=True).values()}
    digest = hashlib.sha256()
    for name, value in sorted(encoder.state_dict(keep_vars=True).items()):
        if name.startswith("fc.") or id(value) in trained:
            continue
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_spec(encoder: nn.Module, *, encoder_name: str, image_size: int, variants: int, seed: int,
               views: int = 0, photo_variants: int = 0) -> dict[str, Any]:
    """What the cached features depend on (stored as meta.json; hashed into the folder name).

    ``views``: renders cached per model, evenly spaced (0 = all). ``photo_variants``:
    photo-like variants per view after the ``variants`` white ones.
    """
    spec = {
        "format": FORMAT_VERSION, "encoder": encoder_name, "weights_sha256": trunk_fingerprint(encoder),
        "image_size": int(image_size), "resize": "bilinear", "variants": int(variants),
        "crop_scale": list(CROP_SCALE), "seed": int(seed), "views": int(views),
    }
    if photo_variants:
        spec["photo_variants"] = int(photo_variants)
        spec["photo_format"] = PHOTO_FORMAT_VERSION
    tail = encoder.cache_tail()
    if tail:  # activations entering the last `tail` trunk units instead of pooled features
        spec["tail_units"] = int(tail)
    return spec


def config_spec(encoder: nn.Module, config: Any) -> dict[str, Any]:
    """The :func:`cache_spec` of training config ``config`` (a TrainConfig) for its image ``encoder``."""
    enc_cfg, d = config.model.image_encoder, config.data
    return cache_spec(encoder, encoder_name=enc_cfg.name, image_size=enc_cfg.image_size, variants=d.feature_variants,
                      seed=config.seed, views=d.feature_views, photo_variants=d.feature_photo_variants)


def cached_views(n_views: int, wanted: int) -> list[int]:
    """The renders cached of a model with ``n_views``: all, or ``wanted`` evenly spaced ones."""
    if wanted <= 0 or wanted >= n_views:
        return list(range(n_views))
    return [(i * n_views) // wanted for i in range(wanted)]


def cache_dir(root: Path, spec: dict[str, Any], base: str | Path | None = None) -> Path:
    """The folder of the cache described by ``spec``."""
    return (Path(base) if base else Path(root) / CACHE_DIRNAME) / cache_key(spec)


def spec_variants(spec: dict[str, Any]) -> int:
    """Cached images per view: the white variants then the photo-like ones."""
    return int(spec["variants"]) + int(spec.get("photo_variants", 0))


def _view_images(model_dir: Path, key: str, spec: dict[str, Any]) -> list[Tensor]:
    """The (views * variants) images of one model, variant-major within each view."""
    n_views = count_views(model_dir)
    if n_views == 0:
        raise DatasetError("no renders", path=model_dir)
    size, images = spec["image_size"], []
    n_photo = int(spec.get("photo_variants", 0))
    if n_photo:
        from recon_cli.data.layout import load_cameras, load_pointcloud
        from recon_cli.data.photos import photo_variant, render_silhouette

        surface = load_pointcloud(model_dir)[0][:SILHOUETTE_POINTS]  # a random subset: the samples are unordered
        K, Rt = load_cameras(model_dir)
    for view in cached_views(n_views, spec.get("views", 0)):
        image = open_view(model_dir, view)
        for variant in range(spec["variants"] + n_photo):
            if variant == 0:
                images.append(image_to_tensor(image, size))
                continue
            rng = np.random.default_rng([spec["seed"], zlib.crc32(key.encode()), view, variant])
            if variant < spec["variants"]:
                images.append(image_to_tensor(random_crop(image, rng, scale=CROP_SCALE), size))
                continue
            silhouette = render_silhouette(surface, K[view], Rt[view], image.height, image.width,
                                           np.asarray(image))
            if not silhouette.any():
                raise DatasetError(f"view {view}: the surface points project outside the render", path=model_dir)
            images.append(image_to_tensor(photo_variant(image, silhouette, rng, size=size), size))
    return images


def camera_spec(spec: dict[str, Any], views: int, synth_seed: int) -> dict[str, Any]:
    """What the camera views of a cache described by ``spec`` depend on (hashed into their own folder)."""
    return {"base": cache_key(spec), "camera_views": int(views), "synth_seed": int(synth_seed),
            "camera_format": CAMERA_FORMAT_VERSION, "image_size": spec["image_size"],
            "variants": spec_variants(spec), "seed": spec["seed"]}


def _camera_images(model_dir: Path, key: str, spec: dict[str, Any]) -> list[Tensor]:
    """The (camera_views * variants) images of one procedural model, view-major; [] for other models."""
    from recon_cli.data.photos import (
        PLAIN, PhotoOptions, is_procedural_id, model_mesh, network_input, photo_like, segmentation_error,
    )

    if not is_procedural_id(model_dir.name):
        return []
    mesh = model_mesh(model_dir.parent.parent, model_dir.parent.name, model_dir.name,
                      synth_seed=spec["synth_seed"])
    size, images = spec["image_size"], []
    options = PhotoOptions(size=max(256, size))
    for view in range(spec["camera_views"]):
        for variant in range(spec["variants"]):
            rng = np.random.default_rng([spec["seed"], zlib.crc32(key.encode()), 1_000_003, view, variant])
            sample = photo_like(mesh, rng, split="train", options=options, family=PLAIN if variant == 0 else None)
            alpha = sample.alpha if variant == 0 else segmentation_error(sample.mask, rng)
            images.append(image_to_tensor(network_input(sample, size=size, rng=rng, alpha=alpha), size))
    return images


def cache_key(spec: dict[str, Any]) -> str:
    """The folder name of the cache described by ``spec``."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def build_feature_cache(root: str | Path, models: Sequence[tuple[str, str]], encoder: nn.Module,
                        spec: dict[str, Any], *, base: str | Path | None = None,
                        on_progress: Callable[[int, int], None] | None = None,
                        batch_size: int = 48) -> Path:
    """Encode the views of ``models`` ((synset, model) pairs) missing from the cache; returns its folder.

    The encoder runs in eval mode and float32 (:meth:`TrunkFreezing.cache_input`: the pooled
    feature, or the activation entering the trained tail units).
    """
    root = Path(root)
    folder = cache_dir(root, spec, base)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "meta.json"
    if not meta.is_file():
        atomic_write_text(meta, json.dumps(spec, indent=1))
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    try:
        camera = "camera_views" in spec
        for done, (synset, model) in enumerate(models):
            path = folder / synset / f"{model}.npy"
            if not path.is_file():
                images = (_camera_images if camera else _view_images)(root / synset / model, f"{synset}/{model}",
                                                                      spec)
                if images:
                    encoded = [encoder.cache_input(torch.stack(images[i:i + batch_size]).to(device)).float().cpu()
                               for i in range(0, len(images), batch_size)]
                    feats = torch.cat(encoded)
                    feats = feats.view(-1, spec_variants(spec), *feats.shape[1:])  # (V, K, D) or (V, K, C, H, W)
                else:  # a model without camera views
                    feats = torch.zeros(0, spec_variants(spec), 1)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, feats.numpy().astype(np.float16))
            if on_progress is not None:
                on_progress(done + 1, len(models))
    finally:
        encoder.train(was_training)
    return folder


def _read_cache_files(folder: Path, models: Sequence[tuple[str, str]]) -> list[np.ndarray]:
    """Each model's ``<folder>/<synset>/<model>.npy`` (no pickles); an unreadable one fails by name."""
    arrays = []
    for synset, model in models:
        path = folder / synset / f"{model}.npy"
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"unreadable feature cache file ({exc})", path=path) from exc
    return arrays


def load_feature_cache(folder: Path, models: Sequence[tuple[str, str]]) -> tuple[Tensor, Tensor]:
    """features (M, V_max, K, *D) float16 and per-model view counts (M,) of ``models``
    (D: the pooled feature's size, or the (C, H, W) of a cached activation)."""
    arrays = _read_cache_files(folder, models)
    if not arrays:
        return torch.zeros(0, 1, 1, 1, dtype=torch.float16), torch.zeros(0, dtype=torch.long)
    v_max = max(a.shape[0] for a in arrays)
    trailing = arrays[0].shape[1:]
    out = torch.zeros(len(arrays), v_max, *trailing, dtype=torch.float16)
    for i, a in enumerate(arrays):
        if a.shape[1:] != trailing:
            raise DatasetError(f"feature cache file has shape {a.shape}, expected (*, {', '.join(map(str, trailing))})",
                               path=folder / models[i][0] / f"{models[i][1]}.npy")
        out[i, : a.shape[0]] = torch.from_numpy(a)
    return out, torch.as_tensor([a.shape[0] for a in arrays])


def append_views(features: Tensor, counts: Tensor, folder: Path, models: Sequence[tuple[str, str]]
                 ) -> tuple[Tensor, Tensor]:
    """``features``/``counts`` (:func:`load_feature_cache`) with each model's cached camera views from
    ``folder`` placed right after its own views."""
    extra = _read_cache_files(folder, models)
    n_extra = torch.as_tensor([len(a) for a in extra], dtype=counts.dtype)
    out = torch.zeros(features.shape[0], int((counts + n_extra).max()), *features.shape[2:], dtype=features.dtype)
    out[:, : features.shape[1]] = features
    for i, a in enumerate(extra):
        if not len(a):
            continue
        if a.shape[1:] != tuple(features.shape[2:]):
            raise DatasetError(f"camera view cache file has shape {a.shape}, expected (*, "
                               f"{', '.join(map(str, features.shape[2:]))})", path=folder / models[i][0] / f"{models[i][1]}.npy")
        c = int(counts[i])
        out[i, c: c + len(a)] = torch.from_numpy(a)
    return out, counts + n_extra


class CachedFeatureItems(WrappedItems):
    """A training reader (built without images) whose items carry a cached ``feature`` (D,) or
    (C, H, W) instead.

    The view is drawn uniformly, the variant uniformly when ``augment`` (else 0),
    from torch's generator, so :class:`~recon_cli.training.sampler.SeededItems` makes them deterministic.
    """

    def __init__(self, base: Any, features: Tensor, counts: Tensor, *, augment: bool) -> None:
        super().__init__(base)
        self.features, self.counts, self.augment = features, counts, augment

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        i = int(item["index"])
        view = int(torch.randint(0, int(self.counts[i]), (1,)))
        variant = int(torch.randint(0, self.features.shape[2], (1,))) if self.augment else 0
        item["feature"] = self.features[i, view, variant].float()
        return item


def build_features_for_config(root: str | Path, config: Any, *, splits: Sequence[str] = ("train",),
                              on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """``recon data features``: the cache ``recon train`` with ``config`` (a TrainConfig) would build.

    Encodes the models of ``splits`` (the categories of ``config.data``); returns a small report.
    """
    import time

    from recon_cli.data.shapenet import ShapeNetDataset
    from recon_cli.errors import ConfigError
    from recon_cli.models import build_image_encoder, init_image_encoder

    enc_cfg, d = config.model.image_encoder, config.data
    if not config.model.has_image_encoder:
        raise ConfigError(f"model {config.model.name} has no image stage")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("no such dataset folder", path=root)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    encoder = build_image_encoder(enc_cfg)
    encoder.cache_tail()  # ConfigError when the whole trunk trains
    init_image_encoder(encoder, enc_cfg)
    models: list[tuple[str, str]] = []
    for split in splits:
        models += ShapeNetDataset(root, split, categories=list(d.categories) if d.categories else None,
                                  with_points=False, with_pointcloud=False).models
    spec = config_spec(encoder, config)
    folder = build_feature_cache(root, models, encoder, spec, base=d.feature_cache_dir or None,
                                 on_progress=on_progress)
    return {"folder": str(folder), "models": len(models), "spec": spec, "seconds": time.perf_counter() - start}
