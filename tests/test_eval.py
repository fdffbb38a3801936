"""`recon eval` and the evaluation library on a small generated dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from helpers_models import make_checkpoint
from recon_cli.cli.app import app
from recon_cli.evaluate import EvalOptions, load_ground_truth, shard_batches
from recon_cli.metrics import METRIC_KEYS, WORST_DISTANCE
from recon_cli.retrieval import RetrievalIndex, score_retrieved

runner = CliRunner()

N_POINTS = 20_000  # per file (the real protocol stores 100k; the code does not depend on it)
SAMPLES = ["--samples", "20000"]
CHAIR, TABLE = "03001627", "04379243"

#: synset -> split -> [(model id, box extents)]
SHAPES: dict[str, dict[str, list[tuple[str, tuple[float, float, float]]]]] = {
    CHAIR: {"train": [("c_tr0", (0.5, 1.0, 0.5)), ("c_tr1", (0.6, 1.0, 0.6))],
            "test": [("c_te0", (0.5, 1.0, 0.55)), ("c_te1", (0.7, 1.0, 0.6)), ("c_te2", (0.4, 1.0, 0.4))]},
    TABLE: {"train": [("t_tr0", (1.0, 0.5, 0.8)), ("t_tr1", (1.0, 0.4, 1.0))],
            "test": [("t_te0", (1.0, 0.45, 0.9)), ("t_te1", (1.0, 0.6, 0.7))]},
}


def write_model(model_dir: Path, extents: tuple[float, float, float], seed: int) -> None:
    """points.npz, pointcloud.npz and a view-0 silhouette of an axis-aligned box, in the dataset format."""
    rng = np.random.default_rng(seed)
    half = np.asarray(extents) / 2
    points = ((rng.random((N_POINTS, 3)) - 0.5) * 1.1).astype(np.float16)
    occ = np.all(np.abs(points.astype(np.float32)) < half, axis=1)
    surface, face_idx = trimesh.sample.sample_surface(trimesh.creation.box(extents=extents), N_POINTS, seed=seed)
    normals = trimesh.creation.box(extents=extents).face_normals[face_idx]
    model_dir.mkdir(parents=True)
    np.savez(model_dir / "points.npz", points=points, occupancies=np.packbits(occ), loc=np.zeros(3), scale=np.array(1.0))
    np.savez(model_dir / "pointcloud.npz", points=surface.astype(np.float16), normals=normals.astype(np.float16),
             loc=np.zeros(3), scale=np.array(1.0))
    (model_dir / "img_choy2016").mkdir()
    image = Image.new("RGB", (137, 137), (255, 255, 255))
    w, h = extents[0] * 100, extents[1] * 100
    ImageDraw.Draw(image).rectangle([68 - w / 2, 68 - h / 2, 68 + w / 2, 68 + h / 2], fill=(120, 90, 60))
    image.save(model_dir / "img_choy2016" / "000.jpg")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapenet")
    meta = {CHAIR: {"id": CHAIR, "name": "chair"}, TABLE: {"id": TABLE, "name": "table"}}
    (root / "metadata.yaml").write_text(yaml.safe_dump(meta))
    seed = 0
    for synset, splits in SHAPES.items():
        for split, models in splits.items():
            for model, extents in models:
                write_model(root / synset / model, extents, seed)
                seed += 1
            (root / synset / f"{split}.lst").write_text("\n".join(m for m, _ in models))
    return root


@pytest.fixture(scope="module")
def meshes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Predictions: the exact boxes, slightly shrunk boxes, one empty file, one missing file."""
    folder = tmp_path_factory.mktemp("meshes")
    for synset, splits in SHAPES.items():
        (folder / synset).mkdir()
        for model, extents in splits["test"]:
            if model == "c_te2":
                continue  # missing -> failed
            if model == "t_te1":
                (folder / synset / f"{model}.off").write_text("OFF\n0 0 0\n")  # no triangles -> empty
                continue
            scale = 1.0 if model.endswith("0") else 0.9
            trimesh.creation.box(extents=np.asarray(extents) * scale).export(folder / synset / f"{model}.obj")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", "doccnet", small=True, nonempty=True)


def invoke(*args: str) -> object:
    return runner.invoke(app, ["eval", *map(str, args)])


def read_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as fh:
        return {(r["synset"], r["model"]): r for r in csv.DictReader(fh)}


def metric_view(summary: dict) -> dict:
    """The numbers of a summary (settings and skipped lists left out)."""
    return {k: summary[k] for k in ("categories", "class_mean", "object_mean")}


def test_meshes_mode_scores_counts_failures_and_aggregates(dataset: Path, meshes: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("--data", dataset, "--meshes", meshes, "--out", out, *SAMPLES)
    assert result.exit_code == 0, result.output
    for text in ("chair", "table", "mean (class)", "object mean", "CD-L1×10", "F@1%", "failed"):
        assert text in result.stdout
    rows = read_rows(out / "objects.csv")
    assert len(rows) == 5
    assert rows[(CHAIR, "c_te2")]["status"] == "failed" and "no mesh" in rows[(CHAIR, "c_te2")]["error"]
    assert rows[(TABLE, "t_te1")]["status"] == "empty"
    for key in ((CHAIR, "c_te2"), (TABLE, "t_te1")):
        assert float(rows[key]["iou"]) == 0.0 and float(rows[key]["fscore_1"]) == 0.0
        assert float(rows[key]["chamfer_l1"]) == pytest.approx(WORST_DISTANCE)
    exact = rows[(CHAIR, "c_te0")]
    assert float(exact["iou"]) > 0.99 and float(exact["chamfer_l1"]) < 0.01 and float(exact["fscore_2"]) > 0.99
    shrunk = rows[(CHAIR, "c_te1")]
    assert float(shrunk["iou"]) == pytest.approx(0.9**3, abs=0.02)
    summary = json.loads((out / "summary.json").read_text())
    chair, table = summary["categories"]
    assert (chair["name"], chair["n"], chair["failed"]) == ("chair", 3, 1)
    assert (table["name"], table["n"], table["failed"], table["empty"]) == ("table", 2, 1, 1)
    assert summary["object_mean"]["failed"] == 2 and summary["object_mean"]["n"] == 5
    for key in METRIC_KEYS:
        per_object = [float(r[key]) for r in rows.values()]
        assert summary["object_mean"][key] == pytest.approx(np.mean(per_object))
        assert summary["class_mean"][key] == pytest.approx((chair[key] + table[key]) / 2)
        assert chair[key] == pytest.approx(np.mean([float(r[key]) for k, r in rows.items() if k[0] == CHAIR]))
    # the table prints the class mean of Chamfer-L1 x10
    assert f"{summary['class_mean']['chamfer_l1'] * 10:.3f}" in result.stdout


def test_same_inputs_same_numbers_and_json(dataset: Path, meshes: Path) -> None:
    a = invoke("--data", dataset, "--meshes", meshes, "--json", "--categories", "chair", *SAMPLES)
    b = invoke("--data", dataset, "--meshes", meshes, "--json", "--categories", "chair", *SAMPLES)
    assert a.exit_code == 0 and b.exit_code == 0
    doc_a, doc_b = json.loads(a.stdout), json.loads(b.stdout)
    assert metric_view(doc_a) == metric_view(doc_b)
    assert [c["synset"] for c in doc_a["categories"]] == [CHAIR]
    raw = invoke("--data", dataset, "--meshes", meshes, "--categories", "chair", "--raw-chamfer", *SAMPLES)
    assert "CD-L1×10" not in raw.stdout and f"{doc_a['class_mean']['chamfer_l1']:.3f}" in raw.stdout


def test_shards_merge_to_the_unsharded_result(dataset: Path, meshes: Path, tmp_path: Path) -> None:
    full = invoke("--data", dataset, "--meshes", meshes, "--json", "--batch-size", "2", *SAMPLES)
    out = tmp_path / "sharded"
    for i in range(3):
        r = invoke("--data", dataset, "--meshes", meshes, "--out", out, "--shard", f"{i}/3", "--batch-size", "2",
                   *SAMPLES)
        assert r.exit_code == 0, r.output
        assert (out / f"shard-{i}-of-3" / "objects.csv").is_file()
    assert len(read_rows(out / "shard-0-of-3" / "objects.csv")) == 2  # batches of 2, batch k -> shard k % 3
    merged = invoke("--merge", "--out", out, "--json")
    assert merged.exit_code == 0, merged.output
    assert metric_view(json.loads(merged.stdout)) == metric_view(json.loads(full.stdout))
    assert len(read_rows(out / "objects.csv")) == 5
    partial = invoke("--merge", out / "shard-0-of-3", out / "shard-1-of-3")
    assert partial.exit_code == 0 and "missing shard(s) 2 of 3" in partial.output


def test_shard_batches_are_shared_with_the_unsharded_run() -> None:
    keys = [("s", f"m{i}") for i in range(7)]
    all_batches = shard_batches(keys, EvalOptions(batch_size=3))
    parts = [shard_batches(keys, EvalOptions(batch_size=3, shard=(i, 2))) for i in range(2)]
    assert all_batches == [keys[0:3], keys[3:6], keys[6:7]]
    assert parts == [[keys[0:3], keys[6:7]], [keys[3:6]]]


def test_rerun_skips_scored_models(dataset: Path, meshes: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = invoke("--data", dataset, "--meshes", meshes, "--out", out, "--json", *SAMPLES)
    assert first.exit_code == 0
    # a rerun must not look at the meshes again: point it to an empty folder of the same name
    moved = tmp_path / "moved"
    meshes_copy = tmp_path / "m"
    meshes_copy.mkdir()
    for p in meshes.rglob("*"):
        if p.is_file():
            (meshes_copy / p.relative_to(meshes)).parent.mkdir(parents=True, exist_ok=True)
            (meshes_copy / p.relative_to(meshes)).write_bytes(p.read_bytes())
    r1 = invoke("--data", dataset, "--meshes", meshes_copy, "--out", moved, "--json", *SAMPLES)
    for p in sorted(meshes_copy.rglob("*.obj")):
        p.unlink()
    r2 = invoke("--data", dataset, "--meshes", meshes_copy, "--out", moved, "--json", *SAMPLES)
    assert r1.exit_code == 0 and r2.exit_code == 0
    assert metric_view(json.loads(r2.stdout)) == metric_view(json.loads(r1.stdout)) == metric_view(
        json.loads(first.stdout))
    # a different protocol in the same folder is refused (one red line, exit 1)
    r3 = invoke("--data", dataset, "--meshes", meshes_copy, "--out", moved, "--split", "train", *SAMPLES)
    assert r3.exit_code == 1 and "different evaluation" in r3.output


def test_tiny_dataset_model_then_meshes_round_trip(tiny_dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    """The shared tiny dataset (real renders) end to end; the kept meshes, scored with --meshes,
    give the same numbers as the model run."""
    out = tmp_path / "model"
    common = ["--data", tiny_dataset, "--limit", "1", "--json", *SAMPLES]
    model = invoke(*common, "--weights", checkpoint, "--quality", "draft", "--device", "cpu", "--out", out)
    assert model.exit_code == 0, model.output
    doc = json.loads(model.stdout)
    assert [c["name"] for c in doc["categories"]] == ["chair", "table"]
    assert doc["object_mean"]["n"] == 2 and doc["object_mean"]["failed"] == 0
    assert doc["settings"]["mode"] == "model" and doc["settings"]["quality"] == "draft"
    rows = read_rows(out / "objects.csv")
    first = {(s, (tiny_dataset / s / "test.lst").read_text().split("\n")[0]) for s in ("03001627", "04379243")}
    assert set(rows) == first
    for (synset, model), row in rows.items():
        assert row["status"] == "ok" and 0.0 < float(row["iou"]) <= 1.0 and int(row["n_faces"]) > 0
        assert (out / "meshes" / synset / f"{model}.off").is_file()
    again = invoke(*common, "--meshes", out / "meshes")
    assert again.exit_code == 0, again.output
    for key in METRIC_KEYS:
        assert json.loads(again.stdout)["class_mean"][key] == pytest.approx(doc["class_mean"][key], rel=1e-4, abs=1e-6)


def test_a_failing_or_empty_reconstruction_is_counted(dataset: Path, checkpoint: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that raises is retried one by one; the bad object fails alone, an empty mesh scores as empty."""
    from recon_cli.evaluate import evaluate_model
    from recon_cli.pipeline import ExtractOptions, Reconstructor
    from recon_cli.runtime.torch_backend import TorchBackend

    original = Reconstructor.reconstruct_images
    calls: list[int] = []

    def flaky(self: Reconstructor, images):  # noqa: ANN001, ANN202
        calls.append(len(images))
        if len(calls) in (1, 2):  # the whole batch, then its first object alone
            raise RuntimeError("CUDA out of memory (simulated)")
        out = original(self, images)
        if len(calls) == 3:
            out[0].mesh = trimesh.Trimesh()
        return out

    monkeypatch.setattr(Reconstructor, "reconstruct_images", flaky)
    run = evaluate_model(dataset, TorchBackend.from_checkpoint(checkpoint, device="cpu"),
                         options=EvalOptions(categories=("chair",), batch_size=3, n_samples=20_000),
                         extract=ExtractOptions(resolution0=16, upsampling_steps=1))
    assert calls == [3, 1, 1, 1]
    assert [r.status for r in run.results] == ["failed", "empty", "ok"]
    assert "CUDA out of memory (simulated)" in run.results[0].error
    assert run.summary["object_mean"]["failed"] == 2 and run.summary["object_mean"]["empty"] == 1
    assert run.results[2].recon_seconds > 0


def test_retrieval_baseline(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    result = invoke("--data", dataset, "--weights", checkpoint, "--baseline", "retrieval", "--out", tmp_path / "r",
                    "--device", "cpu", *SAMPLES)
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "r" / "objects.csv")
    train = {f"{s}/{m}" for s, splits in SHAPES.items() for m, _ in splits["train"]}
    assert len(rows) == 5 and all(r["retrieved"] in train and r["status"] == "ok" for r in rows.values())
    assert "object mean" in result.stdout


def test_retrieval_index_cache_is_reused_only_for_the_same_encoder(dataset: Path, checkpoint: Path,
                                                                   tmp_path: Path) -> None:
    from recon_cli.evaluate import list_models
    from recon_cli.retrieval import build_index
    from recon_cli.runtime.torch_backend import TorchBackend

    calls: list[int] = []

    class Counting:
        def __init__(self, backend: TorchBackend) -> None:
            self.inner, self.image_size = backend, backend.image_size

        def encode_image(self, images):  # noqa: ANN001, ANN202
            calls.append(len(images))
            return self.inner.encode_image(images)

    keys = list_models(dataset, EvalOptions(split="train"))
    cache = tmp_path / "index.npz"
    same = Counting(TorchBackend.from_checkpoint(checkpoint, device="cpu"))
    first = build_index(dataset, keys, same, batch_size=2, cache=cache)
    assert calls == [2, 2] and first.keys == keys
    again = build_index(dataset, keys, same, batch_size=2, cache=cache)
    assert calls == [2, 2, 2]  # only the probe batch
    assert again.keys == first.keys and np.allclose(again.embeddings, first.embeddings)
    other = make_checkpoint(tmp_path / "other.pt", "doccnet", small=True, seed=5)
    rebuilt = build_index(dataset, keys, Counting(TorchBackend.from_checkpoint(other, device="cpu")), batch_size=2,
                          cache=cache)
    assert calls == [2, 2, 2, 2, 2, 2] and not np.allclose(rebuilt.embeddings, first.embeddings)


def test_retrieving_the_object_itself_scores_perfectly(dataset: Path) -> None:
    key = (CHAIR, "c_te1")
    gt = load_ground_truth(dataset / CHAIR / "c_te1")
    result = score_retrieved(dataset, key, gt, key)
    assert result.scores.iou == 1.0 and result.scores.chamfer_l1 == 0.0 and result.scores.fscore_0_5 == 1.0
    index = RetrievalIndex([("a", "1"), ("b", "2")], np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert index.nearest(np.array([0.1, 3.0])) == ("b", "2")


@pytest.mark.parametrize(
    "args",
    [
        ["--meshes", "x"],                                      # no --data
        ["--data", "d", "--meshes", "x", "--weights", "w.pt"],  # two producers
        ["--data", "d", "--meshes", "x", "--shard", "2/2"],     # bad shard
        ["--data", "d", "--baseline", "retrieval", "--meshes", "x"],  # baseline scores no meshes
        ["--data", "d", "--meshes", "x", "--train-root", "t"],  # --train-root without the baseline
        ["--data", "d", "--model", "occnet"],                   # choices
        ["--data", "d", "--device", "tpu"],
        ["--data", "d", "--quality", "ultra"],
        ["--data", "d", "--split", "testing"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    assert invoke(*args).exit_code == 2


def test_bad_inputs_are_one_line_errors(dataset: Path, tmp_path: Path) -> None:
    missing = invoke("--data", dataset, "--meshes", tmp_path / "nope")
    assert missing.exit_code == 1 and "meshes folder does not exist" in missing.output
    bad_cat = invoke("--data", dataset, "--meshes", tmp_path, "--categories", "airplane")
    assert bad_cat.exit_code == 1 and "not in this dataset" in bad_cat.output
    no_data = invoke("--data", tmp_path / "none", "--meshes", tmp_path)
    assert no_data.exit_code == 1 and "Traceback" not in no_data.output
