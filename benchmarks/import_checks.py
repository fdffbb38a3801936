"""Acceptance checks of an imported dataset (``recon data import``); not a timing benchmark.

    python -m benchmarks.import_checks frame  ROOT [--synth-per-category 20] [--out JSON]
    python -m benchmarks.import_checks inside ROOT --from DEBS [--sample 24] [--points 20000]
                                              [--out JSON] [--png PNG]

``frame``: for each category with imported models, compares the orientation of procedural
models (``recon_cli.data.synth.generate``) with the imported ones (their ``pointcloud.npz``):
the principal horizontal axis (the longer of the x and z extents, measured on the 1-99%
quantiles) and, for chairs, benches and sofas with a back-rest, the side that is higher (where the
highest 10% of the points lie: back-rests at -x make -x higher; models whose highest points sit
within 0.1 of the middle count as without a back-rest and are left out of that share).

``inside``: on a sample of imported models whose meshes are not watertight, labels the same
uniform points of the 1.1 cube with the dataset's inside test (ray parity, unsure points by the
winding number) and with the generalised winding number alone, and reports their agreement (and
that of ray parity alone); ``--png`` also writes label slices (the z = 0 plane, a side view, and
the x = 0 plane, a front view) of a chair and a car.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

SEATING = ("chair", "bench", "sofa")


def _horizontal(pts: np.ndarray) -> tuple[str, float, float]:
    lo, hi = np.quantile(pts, [0.01, 0.99], axis=0)
    ext = hi - lo
    return ("x" if ext[0] >= ext[2] else "z"), float(ext[0]), float(ext[2])


def _higher_side(pts: np.ndarray) -> str | None:
    """'-x' or '+x': the side of the highest 10% of points; None when they sit in the middle (no back-rest)."""
    top = np.quantile(pts[:, 1], 0.9)
    mean_x = pts[pts[:, 1] >= top][:, 0].mean()
    if abs(mean_x) < 0.1:
        return None
    return "-x" if mean_x < 0 else "+x"


def frame_check(root: Path, per_category: int) -> dict:
    import trimesh

    from recon_cli.data.build import normalize_mesh
    from recon_cli.data.categories import SYNSETS
    from recon_cli.data.synth import generate

    imported: dict[str, list[np.ndarray]] = defaultdict(list)
    for synset, name in SYNSETS.items():
        for cloud in sorted((root / synset).glob("*/pointcloud.npz")):
            with np.load(cloud) as data:
                imported[name].append(data["points"].astype(np.float64))
    out = {}
    for name, clouds in sorted(imported.items()):
        proc = []
        for seed in range(per_category):
            mesh, _, _ = normalize_mesh(generate(name, seed))
            proc.append(trimesh.sample.sample_surface(mesh, 20000, seed=seed)[0])
        row = {"imported": len(clouds), "procedural": len(proc)}
        for label, group in (("procedural", proc), ("imported", clouds)):
            axes = [_horizontal(p)[0] for p in group]
            row[f"{label}_long_axis_x_share"] = round(axes.count("x") / len(axes), 3)
            if name in SEATING:
                sides = [side for side in (_higher_side(p) for p in group) if side is not None]
                row[f"{label}_with_back_rest"] = len(sides)
                row[f"{label}_higher_side_minus_x_share"] = round(sides.count("-x") / max(len(sides), 1), 3)
        row["long_axis_agrees"] = (row["procedural_long_axis_x_share"] >= 0.5) == (row["imported_long_axis_x_share"] >= 0.5)
        if name in SEATING:
            row["higher_side_agrees"] = (row["procedural_higher_side_minus_x_share"] >= 0.5) == \
                (row["imported_higher_side_minus_x_share"] >= 0.5)
        out[name] = row
    return out


def inside_check(root: Path, debs: list[Path], sample: int, n_points: int, png: Path | None) -> dict:
    import csv

    from recon_cli.data.build import normalize_mesh
    from recon_cli.data.inside import inside_mask, winding_number
    from recon_cli.data.importers.run import plan_import

    with open(root / "SOURCES.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sources = sorted({r["source"] for r in rows})
    chosen, category_of, _, _ = plan_import(sources, root, from_paths=debs)
    loaders = {c.model_id: c.loader for c in chosen}
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    results, slices = [], {}
    for idx in order:
        if len(results) >= sample:
            break
        row = rows[idx]
        loader = loaders.get(row["model"])
        if loader is None:
            continue
        mesh, _, _ = normalize_mesh(loader())
        if mesh.is_watertight:
            continue
        pts = rng.uniform(-0.55, 0.55, (n_points, 3))
        t = time.perf_counter()
        ours = inside_mask(mesh, pts)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        wn = winding_number(mesh, pts) >= 0.5
        t_wn = time.perf_counter() - t
        parity = inside_mask(mesh, pts, method="parity")
        results.append({"model": row["model"], "category": row["category"], "faces": int(len(mesh.faces)),
                        "inside_share": round(float(ours.mean()), 4),
                        "agreement_with_winding": round(float((ours == wn).mean()), 5),
                        "agreement_parity_only_with_winding": round(float((parity == wn).mean()), 5),
                        "seconds_inside_test": round(t_ours, 2), "seconds_winding": round(t_wn, 2)})
        print(json.dumps(results[-1]), file=sys.stderr)
        if row["category"] in ("chair", "car") and row["category"] not in slices:
            slices[row["category"]] = (row["model"], mesh)
    summary = {
        "models": len(results),
        "mean_agreement_with_winding": round(float(np.mean([r["agreement_with_winding"] for r in results])), 5),
        "min_agreement_with_winding": round(float(np.min([r["agreement_with_winding"] for r in results])), 5),
        "mean_agreement_parity_only": round(float(np.mean([r["agreement_parity_only_with_winding"]
                                                           for r in results])), 5),
        "per_model": results,
    }
    if png is not None and slices:
        _slice_png(slices, png)
        summary["slices_png"] = str(png)
    return summary


def _slice_png(slices: dict, png: Path, res: int = 96) -> None:
    """Rows: chair, car. Columns: the z = 0 slice (side view) and the x = 0 slice (front view).

    Pixels: white outside by both tests, black inside by both, red where only the dataset's test says
    inside, blue where only the winding number does.
    """
    from PIL import Image, ImageDraw

    from recon_cli.data.inside import inside_mask, winding_number

    tiles = []
    for category in ("chair", "car"):
        if category not in slices:
            continue
        model, mesh = slices[category]
        row_tiles = []
        c = (np.arange(res) + 0.5) / res * 1.1 - 0.55
        for plane in ("z", "x"):
            a, b = np.meshgrid(c, c[::-1])  # b: height (y), top row = high
            pts = np.stack([a, b, np.zeros_like(a)], -1) if plane == "z" else np.stack([np.zeros_like(a), b, a], -1)
            pts = pts.reshape(-1, 3)
            ours = inside_mask(mesh, pts).reshape(res, res)
            wn = (winding_number(mesh, pts) >= 0.5).reshape(res, res)
            img = np.full((res, res, 3), 255, np.uint8)
            img[ours & wn] = (0, 0, 0)
            img[ours & ~wn] = (230, 30, 30)
            img[~ours & wn] = (30, 30, 230)
            tile = Image.fromarray(img).resize((3 * res, 3 * res), Image.NEAREST)
            ImageDraw.Draw(tile).text((4, 4), f"{category} {model[:28]}\n{plane} = 0 slice", fill=(0, 120, 0))
            row_tiles.append(tile)
        tiles.append(row_tiles)
    w, h = 3 * res, 3 * res
    sheet = Image.new("RGB", (w * 2 + 10, h * len(tiles) + 10 * (len(tiles) - 1)), (255, 255, 255))
    for r, row_tiles in enumerate(tiles):
        for k, tile in enumerate(row_tiles):
            sheet.paste(tile, (k * (w + 10), r * (h + 10)))
    png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_checks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("frame")
    f.add_argument("root", type=Path)
    f.add_argument("--synth-per-category", type=int, default=20)
    f.add_argument("--out", type=Path)
    i = sub.add_parser("inside")
    i.add_argument("root", type=Path)
    i.add_argument("--from", dest="debs", type=Path, action="append", required=True)
    i.add_argument("--sample", type=int, default=24)
    i.add_argument("--points", type=int, default=20000)
    i.add_argument("--out", type=Path)
    i.add_argument("--png", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "frame":
        doc = frame_check(args.root, args.synth_per_category)
    else:
        doc = inside_check(args.root, args.debs, args.sample, args.points, args.png)
    text = json.dumps(doc, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
