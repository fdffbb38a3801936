"""Query points near the surface: surface samples + Gaussian offsets, cached per model.

The ShapeNet layout keeps no mesh, so the points cannot go through the mesh
inside test (:mod:`recon_cli.data.inside`). Each offset point takes the side of
its nearest surface sample instead: inside when ``(q - s) . n < 0`` for the
nearest sample ``s`` of pointcloud.npz and its outward normal ``n`` (100k
samples: about 5 mm apart on a unit-sized object, finer than the offsets).
The rule is checked per model against the dataset's own labels: the uniform
points of points.npz that lie within ``2 sigma`` of the surface are labelled
the same way and compared with their stored (inside-test) occupancy; a model
whose agreement is below :data:`MIN_AGREEMENT` (inconsistent normals, open
sheets) keeps uniform points only.

Cache: ``ROOT/.near_surface/<key>/<synset>/<model>.npz`` (points float16,
packed labels, agreement), key = hash of (format, count, sigma, seed); files
are written atomically, existing ones are reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

from recon_cli.data.layout import load_occupancy, load_pointcloud
from recon_cli.errors import DatasetError
from recon_cli.io.atomic import atomic_write_bytes
from recon_cli.training.sampler import WrappedItems

FORMAT_VERSION = 1
MIN_AGREEMENT = 0.9
CACHE_DIRNAME = ".near_surface"


def _side(tree: cKDTree, surface: np.ndarray, normals: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Inside (True) when q lies behind the normal of its nearest surface sample. (M,3) -> (M,)."""
    _, nearest = tree.query(q)
    return np.einsum("ij,ij->i", q - surface[nearest], normals[nearest]) < 0


def near_surface_points(model_dir: str | Path, *, count: int, sigma: float, seed: int, key: str = ""
                        ) -> tuple[np.ndarray, np.ndarray, float]:
    """``count`` points surface + N(0, sigma^2 I), their labels and the agreement of the rule.

    Returns points (count, 3) float32, inside (count,) bool, agreement in [0, 1]
    (1.0 when no uniform point lies near the surface).
    """
    surface, normals = load_pointcloud(model_dir)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    q = surface[rng.integers(0, len(surface), count)] + rng.normal(0.0, sigma, (count, 3)).astype(np.float32)
    tree = cKDTree(surface)
    inside = _side(tree, surface, normals, q)
    pts, occ = load_occupancy(model_dir)
    dist, _ = tree.query(pts, distance_upper_bound=2.0 * sigma)
    near = np.isfinite(dist)
    agreement = float((_side(tree, surface, normals, pts[near]) == occ[near]).mean()) if near.any() else 1.0
    return q.astype(np.float32), inside, agreement


def near_cache_dir(root: Path, *, count: int, sigma: float, seed: int) -> Path:
    """Cache folder of these settings."""
    spec = {"format": FORMAT_VERSION, "count": int(count), "sigma": float(sigma), "seed": int(seed)}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / CACHE_DIRNAME / key


def build_near_surface(root: str | Path, models: Sequence[tuple[str, str]], *, count: int, sigma: float,
                       seed: int, on_progress: Callable[[int, int], None] | None = None
                       ) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None], list[float]]:
    """Near-surface points (float16 tensors) and labels of ``models``, computing missing cache files.

    A model whose agreement is below :data:`MIN_AGREEMENT` gets ``None`` (uniform points only).
    """
    root = Path(root)
    folder = near_cache_dir(root, count=count, sigma=sigma, seed=seed)
    points: list[torch.Tensor | None] = []
    labels: list[torch.Tensor | None] = []
    agreements: list[float] = []
    for done, (synset, model) in enumerate(models):
        path = folder / synset / f"{model}.npz"
        if not path.is_file():
            q, inside, agreement = near_surface_points(root / synset / model, count=count, sigma=sigma,
                                                       seed=seed, key=f"{synset}/{model}")
            buffer = io.BytesIO()
            np.savez(buffer, points=q.astype(np.float16), occupancies=np.packbits(inside),
                     agreement=np.float64(agreement))
            atomic_write_bytes(path, buffer.getvalue())
        try:
            with np.load(path, allow_pickle=False) as data:
                q16, packed, agreement = data["points"], data["occupancies"], float(data["agreement"])
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"unreadable near-surface cache file ({exc})", path=path) from exc
        agreements.append(agreement)
        ok = agreement >= MIN_AGREEMENT
        points.append(torch.from_numpy(q16) if ok else None)
        labels.append(torch.from_numpy(np.unpackbits(packed)[: len(q16)].astype(np.float32)) if ok else None)
        if on_progress is not None:
            on_progress(done + 1, len(models))
    return points, labels, agreements


class NearSurfaceItems(WrappedItems):
    """Replaces the first ``share`` of each item's uniform query points by near-surface ones.

    Picks are drawn from torch's generator (deterministic under ``SeededItems``);
    models without usable near-surface points keep their uniform points.
    """

    def __init__(self, base: Any, points: list[torch.Tensor | None], labels: list[torch.Tensor | None],
                 share: float) -> None:
        super().__init__(base)
        self.near_points, self.near_labels, self.share = points, labels, share

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        i = int(item["index"])
        near = self.near_points[i]
        k = int(round(self.share * item["points"].shape[0]))
        if near is None or k == 0:
            return item
        pick = torch.randint(0, near.shape[0], (k,))
        points, occ = item["points"].clone(), item["occ"].clone()
        points[:k] = near[pick].float()
        occ[:k] = self.near_labels[i][pick]
        item["points"], item["occ"] = points, occ
        return item
