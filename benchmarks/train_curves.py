"""Validation IoU curves of training runs: JSON + a PNG line chart (PIL, no plotting library).

Reads each run's ``log.jsonl`` (validation records ``val/iou1``... and the
logging records' ``elapsed`` wall seconds, interpolated at the validation steps).

`python -m benchmarks.train_curves --run cpu=runs/cpu --run lite=runs/lite -o benchmarks/results/train-curves`
writes ``PREFIX.json`` and ``PREFIX.png`` (IoU against minutes, and against steps).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def read_curve(run_dir: Path, metric: str = "val/iou1") -> dict[str, Any]:
    """Validation points of a run: [{step, minutes, value}], plus the training rate."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    times = sorted((r["step"], r["elapsed"]) for r in records if "elapsed" in r)
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""

    def elapsed_at(step: int) -> float | None:
        before = [(s, t) for s, t in times if s <= step]
        after = [(s, t) for s, t in times if s >= step]
        if not before or not after:
            return None
        (s0, t0), (s1, t1) = before[-1], after[0]
        return t0 if s1 == s0 else t0 + (t1 - t0) * (step - s0) / (s1 - s0)

    points = []
    for r in records:
        if metric in r:
            t = elapsed_at(r["step"])
            points.append({"step": r["step"], "minutes": None if t is None else round(t / 60.0, 3),
                           "value": round(r[metric], 4)})
    rates = [r["samples_per_s"] for r in records if "samples_per_s" in r]
    return {"run": str(run_dir), "metric": metric, "points": points,
            "samples_per_s_mean": round(sum(rates) / len(rates), 2) if rates else None,
            "config_has_precision_bf16": "precision: bf16" in config}


def _chart(curves: dict[str, dict[str, Any]], x_key: str, title: str, size: tuple[int, int] = (640, 420)):  # noqa: ANN202
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 60, 20, 30, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    xs = [p[x_key] for c in curves.values() for p in c["points"] if p[x_key] is not None]
    ys = [p["value"] for c in curves.values() for p in c["points"]]
    x_max = max(xs) if xs else 1.0
    y_max = max(0.1, (int(max(ys) * 10) + 1) / 10.0) if ys else 1.0

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (w - left - right) * x / x_max, h - bottom - (h - top - bottom) * y / y_max

    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for i in range(6):
        y = y_max * i / 5
        _, py = to_px(0, y)
        draw.line([left - 4, py, left, py], fill="black")
        draw.text((5, py - 6), f"{y:.2f}", fill="black")
        x = x_max * i / 5
        px, _ = to_px(x, 0)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        draw.text((px - 12, h - bottom + 8), f"{x:.0f}" if x_max >= 10 else f"{x:.1f}", fill="black")
    draw.text((w // 2 - 40, h - 20), "minutes" if x_key == "minutes" else "steps", fill="black")
    draw.text((left, 8), title, fill="black")
    for i, (label, curve) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [to_px(p[x_key], p["value"]) for p in curve["points"] if p[x_key] is not None]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for px, py in pts:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((left + 10, top + 8 + 14 * i), label, fill=colour)
    return img


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR (repeatable)")
    parser.add_argument("--metric", default="val/iou1")
    parser.add_argument("--note", default="", help="free text stored in the JSON (load, machine state)")
    parser.add_argument("-o", "--out", required=True, help="output prefix (PREFIX.json, PREFIX.png)")
    args = parser.parse_args(argv)
    curves = {}
    for item in args.run:
        label, _, path = item.partition("=")
        curves[label] = read_curve(Path(path), args.metric)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"metric": args.metric, "note": args.note, "runs": curves},
                                                   indent=1))
    from PIL import Image

    a = _chart(curves, "minutes", f"{args.metric} vs wall-clock minutes")
    b = _chart(curves, "step", f"{args.metric} vs steps")
    sheet = Image.new("RGB", (a.width + b.width, a.height), "white")
    sheet.paste(a, (0, 0))
    sheet.paste(b, (a.width, 0))
    sheet.save(out.with_suffix(".png"))
    print(json.dumps({label: c["points"][-1] if c["points"] else None for label, c in curves.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
