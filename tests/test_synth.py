"""Procedural categories: watertight, canonical, deterministic, varied; jobs and contact sheet."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.data.categories import NAMES, SYNSETS
from recon_cli.data.synth import GENERATORS, contact_sheet, generate, model_seed, synth_jobs
from recon_cli.errors import DatasetError, InputError

CATEGORIES = sorted(NAMES)


def _normalised_bounds(mesh) -> np.ndarray:
    lo, hi = mesh.bounds
    v = (mesh.vertices - (lo + hi) / 2) / (hi - lo).max()
    return np.stack([v.min(0), v.max(0)])


def test_generators_cover_the_13_categories() -> None:
    assert sorted(GENERATORS) == sorted(SYNSETS.values())


@pytest.mark.parametrize("category", CATEGORIES)
def test_watertight_coloured_in_unit_box_for_20_seeds(category: str) -> None:
    sizes = set()
    multi = 0
    for seed in range(20):
        mesh = generate(category, seed)
        assert mesh.is_watertight, (category, seed)
        assert mesh.is_winding_consistent, (category, seed)
        assert mesh.volume > 0, (category, seed)
        assert mesh.body_count == 1, (category, seed)  # no floating parts
        assert 20 <= len(mesh.faces) <= 20_000, (category, seed, len(mesh.faces))
        b = _normalised_bounds(mesh)
        assert b.min() >= -0.5 - 1e-9 and b.max() <= 0.5 + 1e-9
        assert np.isclose((b[1] - b[0]).max(), 1.0)
        colours = np.unique(mesh.visual.face_colors[:, :3], axis=0)
        multi += len(colours) >= 2  # per-part colours survive the union
        sizes.add(len(mesh.faces))
    assert len(sizes) >= 8  # shapes vary across seeds
    assert multi >= 10


def test_two_seeds_differ_and_same_seed_is_identical() -> None:
    for category in CATEGORIES:
        a, b, c = generate(category, 7), generate(category, 7), generate(category, 8)
        assert a.vertices.tobytes() == b.vertices.tobytes()
        assert a.faces.tobytes() == b.faces.tobytes()
        assert a.visual.face_colors.tobytes() == b.visual.face_colors.tobytes()
        assert a.vertices.shape != c.vertices.shape or not np.allclose(a.vertices, c.vertices)


def test_synset_ids_are_accepted() -> None:
    assert generate("03001627", 3).vertices.tobytes() == generate("chair", 3).vertices.tobytes()


def test_bad_category_and_seed_raise_input_error() -> None:
    with pytest.raises(InputError, match="unknown category"):
        generate("teapot", 0)
    with pytest.raises(InputError, match="seed"):
        generate("chair", -1)


def test_synth_jobs_ids_seeds_and_pickling() -> None:
    pytest.importorskip("recon_cli.data.build")
    jobs = synth_jobs(3, ["chair", "04379243"], seed=5)
    assert [j.model_id for j in jobs] == [f"synth_chair_{i:05d}" for i in range(3)] + \
        [f"synth_table_{i:05d}" for i in range(3)]
    assert [j.synset for j in jobs] == ["03001627"] * 3 + ["04379243"] * 3
    assert jobs[1].seed == model_seed(5, "03001627", 1)
    assert synth_jobs(5, ["chair"], seed=5)[1].seed == jobs[1].seed  # stable when N grows
    assert synth_jobs(3, ["chair"], seed=6)[1].seed != jobs[1].seed
    factory = pickle.loads(pickle.dumps(jobs[0].source))
    assert factory().vertices.tobytes() == generate("chair", jobs[0].seed).vertices.tobytes()
    with pytest.raises(InputError):
        synth_jobs(0, None, 0)


def _fake_dataset(root: Path, n: int = 3) -> None:
    root.mkdir()
    (root / "metadata.yaml").write_text("'03001627': {id: '03001627', name: chair}\n"
                                        "'04379243': {id: '04379243', name: table}\n")
    for synset, colour in (("03001627", (200, 30, 30)), ("04379243", (30, 30, 200))):
        ids = [f"m{i}" for i in range(n)]
        (root / synset).mkdir()
        (root / synset / "test.lst").write_text("\n".join(ids[:2]))
        (root / synset / "train.lst").write_text("\n".join(ids[2:]))
        for m in ids:
            d = root / synset / m / "img_choy2016"
            d.mkdir(parents=True)
            Image.new("RGB", (137, 137), colour).save(d / "000.jpg")


def test_contact_sheet_rows_and_tiles(tmp_path: Path) -> None:
    _fake_dataset(tmp_path / "ds")
    out = contact_sheet(tmp_path / "ds", tmp_path / "s.png", per_category=4, split="test")
    with Image.open(out) as im:
        assert im.size == (110 + 4 * 137, 2 * 137)
        px = np.asarray(im.convert("RGB"))
    def near(pixel: np.ndarray, rgb: tuple[int, int, int]) -> bool:  # JPEG tiles: small error
        return bool(np.abs(pixel.astype(int) - rgb).max() <= 6)

    assert near(px[60, 110 + 60], (200, 30, 30))               # chair row, first tile
    assert near(px[137 + 60, 110 + 137 + 60], (30, 30, 200))   # table row, second tile (test split has 2)
    assert tuple(px[137 + 60, 110 + 2 * 137 + 60]) == (255, 255, 255)  # no third test model
    assert not list(tmp_path.glob(".s.png*"))  # no temporary left behind


def test_contact_sheet_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no rendered models"):
        contact_sheet(tmp_path / "empty", tmp_path / "s.png")
    with pytest.raises(InputError, match="split"):
        contact_sheet(tmp_path / "empty", tmp_path / "s.png", split="nope")
    _fake_dataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="001.jpg"):
        contact_sheet(tmp_path / "ds", tmp_path / "s.png", view=1)


def test_cli_preview(tmp_path: Path) -> None:
    _fake_dataset(tmp_path / "ds")
    runner = CliRunner()
    res = runner.invoke(app, ["data", "preview", str(tmp_path / "ds"), "-o", str(tmp_path / "p.png"),
                              "--per-category", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert '"sheet"' in res.stdout
    assert (tmp_path / "p.png").is_file()
    res = runner.invoke(app, ["data", "preview", str(tmp_path / "missing"), "-o", str(tmp_path / "q.png")])
    assert res.exit_code == 1
    assert "Traceback" not in res.output


def test_cli_synth_rejects_unknown_category(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["data", "synth", "-o", str(tmp_path / "x"), "--categories", "teapot"])
    assert res.exit_code == 1
    assert "unknown category" in res.output


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_small_dataset_of_all_categories_passes_check_and_is_deterministic(tmp_path: Path) -> None:
    from recon_cli.data.check import check_dataset
    from recon_cli.data.render import RenderOptions
    from recon_cli.data.synth import synth_dataset

    options = {"render": RenderOptions(n_views=2, antialias=False), "n_points": 2048}
    report = synth_dataset(tmp_path / "a", per_category=2, seed=3, **options)
    assert len(report.results) == 26 and all(r.ok for r in report.results)
    check = check_dataset(tmp_path / "a", full=True)
    assert check.ok, [str(i) for i in check.issues[:5]]
    assert check.n_models == 26
    synth_dataset(tmp_path / "b", per_category=2, categories=["chair", "airplane"], seed=3, **options)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    shared = [k for k in b if k.startswith(("03001627/", "02691156/")) and not k.endswith(".lst")]
    assert len(shared) == 2 * 2 * 6  # 4 models x (3 npz/binvox + 2 jpg + cameras)
    assert all(a[k] == b[k] for k in shared)  # same seed -> identical bytes
    c = _tree_bytes(synth_dataset(tmp_path / "c", per_category=2, categories=["chair"], seed=4, **options).root)
    assert c["03001627/synth_chair_00000/points.npz"] != a["03001627/synth_chair_00000/points.npz"]


def test_cli_synth_then_check_and_preview(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "ds"
    res = runner.invoke(app, ["data", "synth", "-o", str(root), "--per-category", "2", "--categories",
                              "telephone", "--seed", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert '"written": 2' in res.stdout
    res = runner.invoke(app, ["data", "check", str(root), "--full"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "synth", "-o", str(root), "--per-category", "2", "--categories",
                              "telephone", "--seed", "1", "--json"])
    assert '"skipped": 2' in res.stdout  # resumable: finished models are not rewritten
    res = runner.invoke(app, ["data", "preview", str(root), "-o", str(tmp_path / "sheet.png")])
    assert res.exit_code == 0, res.output
    with Image.open(tmp_path / "sheet.png") as im:
        assert im.size == (110 + 8 * 137, 137)


@pytest.mark.slow
def test_cli_two_models_per_category_pass_check(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "synth", "-o", str(tmp_path / "ds"), "--per-category", "2", "--workers", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["data", "check", str(tmp_path / "ds"), "--full", "--json"])
    assert res.exit_code == 0, res.output


def test_at_least_five_families_per_category_all_drawn() -> None:
    from recon_cli.data.synth import families, family_of

    for category in CATEGORIES:
        fams = families(category)
        assert len(fams) >= 5, category
        drawn = {family_of(category, seed) for seed in range(80)}
        assert drawn == set(fams), category
