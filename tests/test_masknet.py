"""The learned mask network: training round trip on a tiny pool, prediction shape, checkpoint errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon_cli.errors import CheckpointError
from recon_cli.io.masknet import NET_SIZE, load_masknet, make_pool, predict, to_input, train


def test_input_letterboxes_the_photo_with_coordinates() -> None:
    rgb = np.zeros((50, 100, 3), np.uint8)
    x, (top, left, h, w) = to_input(rgb)
    assert x.shape == (5, NET_SIZE, NET_SIZE) and (left, w) == (0, NET_SIZE) and h == NET_SIZE // 2
    assert np.allclose(x[:3], -0.5) and x[3, 0, 0] == -1.0 and x[3, 0, -1] == 1.0 and x[4, -1, 0] == 1.0


def test_pool_masks_match_the_inputs() -> None:
    xs, ys = make_pool(3, seed=1, categories=["chair"])
    assert xs.shape == (3, 5, NET_SIZE, NET_SIZE) and ys.shape == (3, NET_SIZE, NET_SIZE)
    assert all(0 < y.mean() < 0.9 for y in ys)


def test_train_save_load_predict(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    info = train(out, pool=4, minutes=0.002, batch=2, width=4)
    assert out.is_file() and info["steps"] >= 1
    prob = predict(np.zeros((30, 40, 3), np.uint8), out)
    assert prob.shape == (30, 40) and np.isfinite(prob).all() and 0 <= prob.min() <= prob.max() <= 1


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load the mask network"):
        load_masknet(str(bad))
    import torch

    torch.save({"format": 1, "kind": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a mask-network checkpoint"):
        load_masknet(str(tmp_path / "other.pt"))
