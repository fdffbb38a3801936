"""Multi-view IoU table from `recon eval --views N` run folders.

    python -m benchmarks.multiview RUNS_DIR [-o benchmarks/results/multiview.json]

RUNS_DIR holds folders named ``<prefix>-<model>-<fusion>-v<N>-<split>`` (each made by
``recon eval --model <model> --fusion <fusion> --views <N> --split <split> --out ...``); the
splits of one (model, fusion, N) are pooled, then scored like ``recon eval`` does (per-category
means, class mean = unweighted mean of category means). Prints one Markdown table of IoU per
category, one of every metric's class mean (with the 32^3 voxel IoU of voxel models), and writes the JSON document (with the runs' settings and the load it was taken under).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict
from pathlib import Path

from recon_cli.evaluate import OBJECTS_FILE, RUN_FILE, read_results, summarize

_NAME = re.compile(r"^(?P<prefix>[A-Za-z0-9]+)-(?P<model>[a-z0-9]+)-(?P<fusion>[a-z]+)-v(?P<views>\d+)-(?P<split>\w+)$")


def collect(runs: Path, prefix: str | None = None) -> dict[tuple[str, str, int], dict]:
    """(model, fusion, views) -> summary of all its splits' objects."""
    pooled: dict[tuple[str, str, int], list] = defaultdict(list)
    splits: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    settings: dict[tuple[str, str, int], dict] = {}
    for folder in sorted(runs.iterdir()):
        match = _NAME.match(folder.name)
        if not match or not (folder / OBJECTS_FILE).is_file() or (prefix and match["prefix"] != prefix):
            continue
        key = (match["model"], match["fusion"], int(match["views"]))
        pooled[key].extend(read_results(folder / OBJECTS_FILE))
        splits[key].append(match["split"])
        run_file = folder / RUN_FILE
        if run_file.is_file():
            settings[key] = json.loads(run_file.read_text())
    out = {}
    for key, results in pooled.items():
        summary = summarize(results)
        summary["splits"] = sorted(splits[key])
        summary["run"] = settings.get(key, {})
        out[key] = summary
    return out


def table(summaries: dict[tuple[str, str, int], dict]) -> str:
    """Markdown: one row per (model, fusion, N), IoU per category, class mean, objects, failed."""
    keys = sorted(summaries, key=lambda k: (k[0], k[1] != "code", k[1], k[2]))
    if not keys:
        return "(no runs)"
    names = [c["name"] for c in summaries[keys[0]]["categories"]]
    lines = ["| model | fusion | views | " + " | ".join(names) + " | class mean | objects | failed |",
             "|---|---|---|" + "---|" * (len(names) + 3)]
    for key in keys:
        s = summaries[key]
        by_name = {c["name"]: c["iou"] for c in s["categories"]}
        cells = [f"{by_name[n]:.3f}" if n in by_name else "-" for n in names]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells)
                     + f" | **{s['class_mean']['iou']:.3f}** | {s['object_mean']['n']} | {s['object_mean']['failed']} |")
    return "\n".join(lines)


def overview(summaries: dict[tuple[str, str, int], dict]) -> str:
    """Markdown: one row per (model, fusion, N) with the class means of every metric (Chamfer-L1 x10)
    and 3D-R2N2's 32^3 voxel IoU where the runs have it (voxel models)."""
    keys = sorted(summaries, key=lambda k: (k[0], k[1], k[2]))
    lines = ["| model | fusion | views | IoU | Chamfer-L1 x10 | normal consistency | F@1% | voxel IoU 32^3 | "
             "objects | failed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key in keys:
        c, o = summaries[key]["class_mean"], summaries[key]["object_mean"]
        voxel = f"{c['voxel_iou']:.3f}" if "voxel_iou" in c else "-"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {c['iou']:.3f} | {10 * c['chamfer_l1']:.3f} | "
                     f"{c['normal_consistency']:.3f} | {c['fscore_1']:.3f} | {voxel} | {o['n']} | {o['failed']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--prefix", default=None, help="only folders with this name prefix")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args()
    summaries = collect(args.runs, args.prefix)
    print(table(summaries))
    print()
    print(overview(summaries))
    if args.output is not None:
        doc = {
            "what": "class-mean and per-category IoU of N-view reconstructions (recon eval --views N)",
            "load_average": os.getloadavg(),
            "results": [{"model": k[0], "fusion": k[1], "views": k[2], "splits": s["splits"],
                         "class_mean_iou": s["class_mean"]["iou"], "object_mean_iou": s["object_mean"]["iou"],
                         "objects": s["object_mean"]["n"], "failed": s["object_mean"]["failed"],
                         "class_mean": {k: v for k, v in s["class_mean"].items() if k != "n"},
                         "categories": {c["name"]: round(c["iou"], 4) for c in s["categories"]},
                         "categories_voxel_iou": {c["name"]: round(c["voxel_iou"], 4) for c in s["categories"]
                                                  if "voxel_iou" in c},
                         "reconstruction_seconds_per_object": s["seconds_per_object"]["reconstruction"]}
                        for k, s in sorted(summaries.items())],
        }
        args.output.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
