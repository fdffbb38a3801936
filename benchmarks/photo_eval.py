"""Photo-like test set vs white renders of the same models, through the whole inference path.

    python -m benchmarks.photo_eval --data ROOT --synth-seed S --weights W --work DIR
        [-o benchmarks/results/photo-eval.json] [--per-model 1] [--split test]

1. ``recon data photos ROOT --split test --per-model N`` writes photo-like images of the split's
   procedural models (held-out background families and seed stream, random light and camera).
2. ``recon reconstruct`` runs on every photo as a user would (``--segment auto`` finds the
   object, framing as at inference); meshes are gathered as ``<synset>/<model>.obj``
   (the first photo of each model).
3. ``recon eval --meshes`` scores them against the models' ground truth; ``recon eval
   --weights`` scores the same models from their white-background render (view 0).
4. With ``--true-masks``, the same photos are also reconstructed with their true object masks
   (``--mask``), which splits the gap into what segmentation costs and what the backgrounds,
   lights and cameras cost the network itself.
5. With ``--same-cameras``, each model is also rendered from its first photo's camera (K, [R|t]) on
   the plain white backdrop with the standard renders' lighting and no camera effects, and
   reconstructed as a user would: what the wider range of cameras (elevation, field of view,
   distance) costs on its own, apart from backgrounds, light colour, blur and noise.

Writes one JSON document: both summaries (class mean and per category) and the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _recon(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "recon_cli", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result


def _true_mask_meshes(photos: Path, index: dict, weights: Path, out: Path, threads: int) -> list[str]:
    """Each model's first photo reconstructed with its true mask -> out/<synset>/<model>.obj; the errors."""
    errors = []
    for entry in index["images"]:
        if not Path(entry["image"]).stem.endswith("_00"):
            continue
        target = out / entry["synset"] / f"{entry['model']}.obj"
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        result = _recon("reconstruct", str(photos / entry["image"]), "--mask", str(photos / entry["mask"]),
                        "-o", str(target), "--weights", str(weights), "--threads", str(threads), "--json")
        errors += [r["error"] for r in json.loads(result.stdout)["results"] if r.get("error")]
    return errors


def _same_camera_meshes(data: Path, synth_seed: int, photos: Path, index: dict, weights: Path, work: Path,
                        threads: int) -> tuple[Path, list[str]]:
    """Each model's first photo camera rendered on white (standard shading) and reconstructed ->
    (folder of <synset>/<model>.obj, errors)."""
    import numpy as np
    from PIL import Image

    from recon_cli.data.build import normalize_mesh
    from recon_cli.data.photos import model_mesh
    from recon_cli.data.render import RenderOptions, render_image

    images, raw, out = work / "same-camera" / "images", work / "same-camera" / "raw", work / "meshes-same-camera"
    images.mkdir(parents=True, exist_ok=True)
    firsts = [e for e in index["images"] if Path(e["image"]).stem.endswith("_00")]
    for entry in firsts:
        target = images / Path(entry["image"]).name
        if target.is_file():
            continue
        width, height = Image.open(photos / entry["image"]).size
        side = max(width, height)
        mesh = normalize_mesh(model_mesh(data, entry["synset"], entry["model"], synth_seed=synth_seed))[0]
        # the photo's K is that of its crop: rendering the square with it puts the crop at the top left
        pixels = render_image(mesh, np.asarray(entry["K"]), np.asarray(entry["Rt"]), size=side,
                              options=RenderOptions(size=side))[:height, :width]
        Image.fromarray(pixels).save(target)
    rec = _recon("reconstruct", str(images), "--out-dir", str(raw), "--weights", str(weights),
                 "--segment", "auto", "--skip-existing", "--threads", str(threads), "--json")
    errors = [r["error"] for r in json.loads(rec.stdout)["results"] if r.get("error")]
    for entry in firsts:
        src = raw / f"{Path(entry['image']).stem}.obj"
        if src.is_file():
            (out / entry["synset"]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / entry["synset"] / f"{entry['model']}.obj")
    return out, errors


def run(data: Path, synth_seed: int, weights: Path, work: Path, *, per_model: int = 1, split: str = "test",
        seed: int = 0, threads: int = 2, true_masks: bool = False, same_cameras: bool = False) -> dict:
    photos, raw, meshes = work / "photos", work / "raw", work / "meshes"
    if not (photos / "index.json").is_file():
        _recon("data", "photos", str(data), "-o", str(photos), "--split", split, "-n", str(per_model),
               "--seed", str(seed), "--synth-seed", str(synth_seed))
    index = json.loads((photos / "index.json").read_text())
    rec = _recon("reconstruct", str(photos / "images"), "--out-dir", str(raw), "--weights", str(weights),
                 "--segment", "auto", "--skip-existing", "--threads", str(threads), "--json")
    failures = [r for r in json.loads(rec.stdout)["results"] if r.get("error")]
    for entry in index["images"]:
        name = Path(entry["image"]).stem
        if not name.endswith("_00"):
            continue
        src = raw / f"{name}.obj"
        if src.is_file():
            (meshes / entry["synset"]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, meshes / entry["synset"] / f"{entry['model']}.obj")
    common = ["--data", str(data), "--split", split, "--json", "--threads", str(threads)]
    photo = json.loads(_recon("eval", *common, "--meshes", str(meshes), "--out", str(work / "eval-photo")).stdout)
    white = json.loads(_recon("eval", *common, "--weights", str(weights), "--out", str(work / "eval-white")).stdout)
    extra: dict = {}
    if true_masks:
        errors = _true_mask_meshes(photos, index, weights, work / "meshes-true-mask", threads)
        masked = json.loads(_recon("eval", *common, "--meshes", str(work / "meshes-true-mask"),
                                   "--out", str(work / "eval-true-mask")).stdout)
        extra = {"true_mask": masked, "true_mask_failures": errors,
                 "class_mean_iou_true_mask": masked["class_mean"]["iou"],
                 "difference_true_mask": white["class_mean"]["iou"] - masked["class_mean"]["iou"]}
    if same_cameras:
        folder, errors = _same_camera_meshes(data, synth_seed, photos, index, weights, work, threads)
        same = json.loads(_recon("eval", *common, "--meshes", str(folder),
                                 "--out", str(work / "eval-same-camera")).stdout)
        extra.update({"same_camera_white": same, "same_camera_failures": errors,
                      "class_mean_iou_same_camera_white": same["class_mean"]["iou"],
                      "difference_same_camera_white": white["class_mean"]["iou"] - same["class_mean"]["iou"]})
    return {
        "data": str(data), "split": split, "weights": str(weights), "photos_per_model": per_model,
        "images": len(index["images"]), "reconstruct_failures": [f["error"] for f in failures],
        "photo": photo, "white": white,
        "class_mean_iou": {"photo": photo["class_mean"]["iou"], "white": white["class_mean"]["iou"]},
        "difference": white["class_mean"]["iou"] - photo["class_mean"]["iou"],
        **extra,
        "load": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--synth-seed", type=int, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--per-model", type=int, default=1)
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--true-masks", action="store_true",
                        help="also reconstruct every photo with its true mask (--mask)")
    parser.add_argument("--same-cameras", action="store_true",
                        help="also render each model from its photo's camera on white and reconstruct that")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/photo-eval.json"))
    args = parser.parse_args()
    doc = run(args.data, args.synth_seed, args.weights, args.work, per_model=args.per_model, split=args.split,
              threads=args.threads, true_masks=args.true_masks, same_cameras=args.same_cameras)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    m = doc["class_mean_iou"]
    print(f"class-mean IoU: white {m['white']:.3f}, photo-like {m['photo']:.3f} "
          f"(difference {doc['difference']:+.3f}); {len(doc['reconstruct_failures'])} photos failed")
    if "true_mask" in doc:
        print(f"with the true masks: {doc['class_mean_iou_true_mask']:.3f} "
              f"(difference {doc['difference_true_mask']:+.3f}); {len(doc['true_mask_failures'])} failed")
    if "same_camera_white" in doc:
        print(f"white at the photos' cameras: {doc['class_mean_iou_same_camera_white']:.3f} "
              f"(difference {doc['difference_same_camera_white']:+.3f}); {len(doc['same_camera_failures'])} failed")


if __name__ == "__main__":
    main()
