"""Synthetic decoder weights: a model that predicts a closed blob for any input.

Used by tests (non-empty meshes from random-weight checkpoints) and by the
benchmarks (full-size networks whose MISE visits a realistic number of points).
"""

from __future__ import annotations

import torch

from recon_cli.models.decoder import Decoder

#: Radius of the sphere-like occupancy field of ``nonempty=True`` models.
BLOB_RADIUS = 0.3


def _blob_directions() -> torch.Tensor:
    """Unit directions: the 3 axes and the 4 cube diagonals (7, 3)."""
    axes = torch.eye(3)
    diag = torch.tensor([[1.0, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]]) / 3**0.5
    return torch.cat([axes, diag])


def make_blob_decoder(decoder: Decoder, radius: float = BLOB_RADIUS, sharpness: float = 40.0) -> None:
    """Set ``decoder`` weights so that it predicts a closed, roughly round blob for any code.

    Hidden units carry ``relu(+n.p)`` and ``relu(-n.p)`` for 7 directions n (needs hidden >= 14;
    with fewer units only the 3 axes are used, giving an octahedron); CBN layers become
    identities and the output is ``sharpness * (radius - sum_n |n.p| / k)`` with k chosen so
    the surface crosses the axes at ``radius``.
    """
    h = decoder.fc_p.out_features
    if h < 6:
        raise ValueError("blob decoder needs hidden >= 6")
    dirs = _blob_directions() if h >= 14 else torch.eye(3)
    with torch.no_grad():
        for p in decoder.parameters():
            p.zero_()
        for m in decoder.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
        for cbn in [decoder.bn] + [bn for block in decoder.blocks for bn in (block.bn_0, block.bn_1)]:
            cbn.conv_gamma.bias.fill_(1.0)
        for i, n in enumerate(dirs):
            decoder.fc_p.weight[2 * i] = n
            decoder.fc_p.weight[2 * i + 1] = -n
        k = float(dirs[:, 0].abs().sum())  # sum_n |n . e_x|
        decoder.fc_out.weight[0, : 2 * len(dirs)] = -sharpness / k
        decoder.fc_out.bias.fill_(sharpness * radius)
