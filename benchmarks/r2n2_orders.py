"""How much 3D-R2N2's answer depends on the order of its views.

    python -m benchmarks.r2n2_orders --data ROOT [--weights weights/r2n2.pt] [--split test] [--views 3]
        [--limit N] [-o benchmarks/results/r2n2-view-orders.json]

A recurrent unit is not order-invariant by construction; training on views in
random order makes it so only in expectation. For every model of the split, N
distinct views (seeded per model, as ``recon eval --view-choice random``) are fed
in all N! orders; the 32^3 voxel IoU (probability 0.4, against ``model.binvox``)
of each order is recorded. Reported: the mean IoU per order position, and per
model the spread (max - min) and standard deviation over orders.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np
import torch

from recon_cli.data.shapenet import load_view
from recon_cli.evaluate import EvalOptions, choose_views, list_models, voxel_grid_iou
from recon_cli.voxel import DEFAULT_VOXEL_WEIGHTS, VoxelBackend


def measure(root: Path, weights: Path, *, split: str, views: int, limit: int | None, seed: int = 0) -> dict:
    backend = VoxelBackend.from_checkpoint(weights, device="cpu", threads=1)
    keys = list_models(root, EvalOptions(split=split, limit=limit))
    rows = []
    for key in keys:
        model_dir = root / key[0] / key[1]
        chosen = choose_views(model_dir, key, views, "random", seed)
        images = torch.stack([load_view(model_dir, v, size=backend.image_size) for v in chosen])
        ious = [voxel_grid_iou(backend.probabilities(images[list(order)]).numpy(), model_dir)
                for order in itertools.permutations(range(views))]
        rows.append({"synset": key[0], "model": key[1], "views": chosen, "ious": [round(x, 4) for x in ious]})
    ious = np.array([r["ious"] for r in rows])  # (models, orders)
    spread = ious.max(1) - ious.min(1)
    return {
        "what": f"voxel IoU (32^3, p > 0.4) of {views} views fed in all {len(ious[0])} orders",
        "weights": str(weights), "split": split, "models": len(rows), "load_average": os.getloadavg(),
        "mean_iou_per_order": [round(float(x), 4) for x in ious.mean(0)],
        "spread_over_orders": {"mean": float(spread.mean()), "median": float(np.median(spread)),
                               "p90": float(np.quantile(spread, 0.9)), "max": float(spread.max())},
        "std_over_orders_mean": float(ious.std(1).mean()),
        "per_model": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=Path("weights") / DEFAULT_VOXEL_WEIGHTS)
    parser.add_argument("--split", default="test")
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    doc = measure(args.data, args.weights, split=args.split, views=args.views, limit=args.limit)
    short = {k: v for k, v in doc.items() if k != "per_model"}
    print(json.dumps(short, indent=2))
    if args.output is not None:
        args.output.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
