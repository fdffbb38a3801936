"""Retrieval baseline: answer each test image with the nearest training shape.

Embedding: the stage-1 image encoder's code c (the model's own encoder; any
trained checkpoint with an image encoder works) of view 0, L2-normalised;
similarity is cosine. The training database holds view 0 of every model of
the training split (of the evaluated categories).

Scoring the retrieved shape (no mesh is reconstructed; both shapes live in
the same normalised frame):

- surface metrics (Chamfer, accuracy/completeness, normal consistency,
  F-score): the retrieved model's ``pointcloud.npz`` points and normals
  stand in for the 100k predicted surface samples;
- IoU: each of the test object's 100k query points gets the occupancy label
  of its nearest neighbour among the retrieved model's 100k labelled
  ``points.npz`` points (mean spacing about 1.1 / 46 = 0.024; finer than the
  32^3 ``model.binvox`` grid, spacing 1.1 / 32).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from recon_cli.errors import DatasetError, ReconError
from recon_cli.metrics import score_points, worst_scores

if TYPE_CHECKING:
    from recon_cli.evaluate import GroundTruth, ObjectResult
    from recon_cli.runtime.base import Backend

Key = tuple[str, str]


@dataclass(frozen=True)
class RetrievalIndex:
    """Unit-length embeddings (N, C) of the training shapes ``keys``."""

    keys: list[Key]
    embeddings: np.ndarray  # (N, C)

    def nearest(self, code: np.ndarray) -> Key:
        """The training shape of highest cosine similarity to ``code`` (C,); ties -> first."""
        return self.keys[int(np.argmax(self.embeddings @ _normalise(code[None])[0]))]


def _normalise(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    return codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)


def embed_views(root: Path, keys: Sequence[Key], backend: Backend) -> tuple[np.ndarray, dict[int, str]]:
    """Stage-1 codes (B, C) of view 0 of ``keys``; unreadable renders are listed in the dict (index -> error)
    and get a zero row."""
    import torch

    from recon_cli.data.shapenet import load_view

    images, ok, failed = [], [], {}
    for i, (synset, model) in enumerate(keys):
        try:
            images.append(load_view(root / synset / model, 0, size=backend.image_size))
            ok.append(i)
        except ReconError as exc:
            failed[i] = str(exc)
    codes = None
    if images:
        codes = backend.encode_image(torch.stack(images)).float().cpu().numpy()  # (B', C)
    out = np.zeros((len(keys), 0 if codes is None else codes.shape[1]), dtype=np.float32)
    if codes is not None:
        out[ok] = codes
    return out, failed


def build_index(root: Path, keys: Sequence[Key], backend: Backend, *, batch_size: int = 32,
                cache: Path | None = None, on_progress: Callable[[int, int], None] | None = None) -> RetrievalIndex:
    """Embed view 0 of every training shape in ``keys``; shapes without a readable render or
    ground truth are left out. DatasetError when nothing is left.

    With ``cache`` (an .npz path) an earlier index is reused when it lists the same training shapes
    and a fresh embedding of its first batch matches (so a changed checkpoint is noticed); otherwise
    the index is rebuilt and saved there atomically.
    """
    from recon_cli.data.layout import POINTCLOUD_FILE, POINTS_FILE

    usable = [k for k in keys if all((root / k[0] / k[1] / f).is_file() for f in (POINTS_FILE, POINTCLOUD_FILE))]
    step = max(1, batch_size)
    if cache is not None:
        cached = _load_cache(cache, usable)
        if cached is not None and _probe_matches(root, cached, backend, step):
            if on_progress:
                on_progress(len(usable), len(usable))
            return cached
    kept: list[Key] = []
    chunks: list[np.ndarray] = []
    for start in range(0, len(usable), step):
        batch = usable[start:start + step]
        codes, failed = embed_views(root, batch, backend)
        good = [i for i in range(len(batch)) if i not in failed]
        kept += [batch[i] for i in good]
        chunks.append(codes[good])
        if on_progress:
            on_progress(min(start + step, len(usable)), len(usable))
    if not kept:
        raise DatasetError("the retrieval baseline found no usable training shape (train split)", path=root)
    index = RetrievalIndex(kept, _normalise(np.concatenate(chunks)))
    if cache is not None:
        _save_cache(cache, index, usable)
    return index


def _names(keys: Sequence[Key]) -> np.ndarray:
    return np.array([f"{s}/{m}" for s, m in keys], dtype=str)


def _save_cache(path: Path, index: RetrievalIndex, usable: Sequence[Key]) -> None:
    import io

    from recon_cli.io.atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, keys=_names(index.keys), usable=_names(usable), embeddings=index.embeddings)
    atomic_write_bytes(path, buf.getvalue())


def _load_cache(path: Path, usable: Sequence[Key]) -> RetrievalIndex | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if list(data["usable"]) != list(_names(usable)):
                return None
            keys = [tuple(str(k).split("/", 1)) for k in data["keys"]]
            return RetrievalIndex(keys, np.asarray(data["embeddings"], dtype=np.float64))  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError):
        return None


def _probe_matches(root: Path, index: RetrievalIndex, backend: Backend, n: int) -> bool:
    probe = index.keys[:n]
    codes, failed = embed_views(root, probe, backend)
    if failed or len(index.embeddings) < len(probe) or codes.shape[1] != index.embeddings.shape[1]:
        return False
    return bool(np.allclose(_normalise(codes), index.embeddings[: len(probe)], atol=1e-4))


def score_retrieved(root: Path, retrieved: Key, gt: GroundTruth, key: Key) -> ObjectResult:
    """Score training shape ``retrieved`` as the prediction for test model ``key``."""
    from recon_cli.data.shapenet import load_occupancy, load_pointcloud
    from recon_cli.evaluate import ObjectResult

    start = time.perf_counter()
    folder = root / retrieved[0] / retrieved[1]
    label = f"{retrieved[0]}/{retrieved[1]}"
    try:
        pred_points, pred_normals = load_pointcloud(folder)
        ref_points, ref_occ = load_occupancy(folder)
    except DatasetError as exc:
        return ObjectResult(*key, "failed", worst_scores(), error=f"retrieved shape unreadable: {exc}",
                            retrieved=label)
    _, nearest = cKDTree(ref_points).query(gt.occ_points, k=1, workers=-1)  # (K,)
    scores = score_points(pred_points, pred_normals, ref_occ[nearest], occ=gt.occ, gt_points=gt.points,
                          gt_normals=gt.normals)
    return ObjectResult(*key, "ok", scores, seconds=time.perf_counter() - start, retrieved=label)

