"""`recon reconstruct` end to end with tiny random-weight checkpoints (33^3 lattices, a few seconds)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_models import BLOB_RADIUS, make_checkpoint
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app
from recon_cli.io.mesh import load_mesh

runner = CliRunner()
FAST = ["--quality", "draft", "--resolution", "16", "--device", "cpu"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("w") / "doccnet.pt", "doccnet", nonempty=True)


def _photo(path: Path, colour: tuple[int, int, int] = (200, 40, 40)) -> Path:
    arr = np.full((60, 80, 3), 128, np.uint8)
    arr[15:45, 25:55] = colour
    Image.fromarray(arr).save(path)
    return path


def _header_only_png(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    return path


def test_single_file_to_ply(tmp_path: Path, weights: Path) -> None:
    photo = _photo(tmp_path / "chair.png")
    result = runner.invoke(app, ["reconstruct", str(photo), "-o", str(tmp_path / "chair.ply"), "--weights", str(weights), *FAST])
    assert result.exit_code == 0, result.output
    out = tmp_path / "chair.ply"
    assert out.read_bytes()[:3] == b"ply"
    mesh = load_mesh(out)
    assert len(mesh.faces) > 100 and mesh.is_watertight
    assert np.abs(mesh.vertices).max() <= 0.55 + 1e-6
    assert "chair.png" in result.stderr and "1 reconstructed" in result.stderr
    assert result.stdout == ""


def test_batch_folder_with_bad_files(tmp_path: Path, weights: Path) -> None:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    _photo(src / "good.png")
    _photo(src / "sub" / "nested.jpg", (30, 60, 200))
    gray = np.full((40, 40), 90, np.uint8)
    gray[10:30, 12:28] = 200
    Image.fromarray(gray).save(src / "gray.png")  # converted
    deep = np.full((40, 40), 30_000, np.uint16)
    deep[8:32, 10:30] = 60_000
    Image.fromarray(deep).save(src / "deep16.png")  # converted
    cmyk = Image.new("CMYK", (40, 40), (0, 0, 0, 40))
    cmyk.paste((0, 200, 200, 0), (10, 10, 30, 30))
    cmyk.save(src / "cmyk.jpg")  # converted
    frames = [_photo_image((250, 0, 0)), _photo_image((0, 0, 250))]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])  # first frame + warning
    (src / "bad.png").write_bytes(b"definitely not a PNG")
    whole = (src / "good.png").read_bytes()
    (src / "trunc.png").write_bytes(whole[: len(whole) // 2])
    _header_only_png(src / "huge.png", 20_000, 20_000)
    out = tmp_path / "meshes"
    args = ["reconstruct", str(src), "--recursive", "--out-dir", str(out), "--format", "off", "--weights", str(weights),
            "--batch-size", "3", "--save-stages", "--save-input", "--json", *FAST]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    by_name = {Path(r["input"]).name: r for r in doc["results"]}
    assert set(by_name) == {"good.png", "nested.jpg", "gray.png", "deep16.png", "cmyk.jpg", "anim.gif",
                            "bad.png", "trunc.png", "huge.png"}
    assert doc["summary"]["failed"] == 3 and doc["summary"]["ok"] == 6
    assert "not an image" in by_name["bad.png"]["error"]
    assert "truncated" in by_name["trunc.png"]["error"]
    assert "too large" in by_name["huge.png"]["error"]
    for bad in ("bad.png", "trunc.png", "huge.png"):
        assert bad in result.stderr  # named on stderr, one line each
        assert by_name[bad]["output"] is None
    assert any("first frame" in w for w in by_name["anim.gif"]["warnings"])
    for name, stem in [("good.png", "good"), ("gray.png", "gray"), ("deep16.png", "deep16"), ("cmyk.jpg", "cmyk"),
                       ("anim.gif", "anim")]:
        r = by_name[name]
        assert r["error"] is None and r["output"] == str(out / f"{stem}.off")
        assert r["faces"] == len(load_mesh(out / f"{stem}.off").faces) > 0
        assert set(json.loads(json.dumps(r))) >= {"input", "output", "vertices", "faces", "watertight", "seconds", "error"}
    assert (out / "sub" / "nested.off").is_file()  # mirrored subfolder
    assert (out / "good.stage1.off").is_file() and (out / "good.points.ply").is_file()
    assert Image.open(out / "good.input.png").size == (64, 64)  # the tiny model's image size
    assert len(load_mesh(out / "good.stage1.off").faces) > 0
    assert not list(out.rglob("*.part"))


def _photo_image(colour: tuple[int, int, int]) -> Image.Image:
    arr = np.full((40, 40, 3), 128, np.uint8)
    arr[10:30, 10:30] = colour
    return Image.fromarray(arr)


def test_skip_existing_needs_no_weights(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "a.png")
    (tmp_path / "a.obj").write_text("v 0 0 0\n")
    result = runner.invoke(app, ["reconstruct", str(photo), "--skip-existing", "--weights", str(tmp_path / "none.pt"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    (r,) = json.loads(result.stdout)["results"]
    assert r["skipped"] is True and r["output"] == str(tmp_path / "a.obj")
    assert (tmp_path / "a.obj").read_text() == "v 0 0 0\n"


def test_points_reconstructed_in_the_clouds_frame(tmp_path: Path, weights: Path) -> None:
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(500, 3))
    cloud = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * 10.0 + np.array([5.0, -3.0, 2.0])
    np.save(tmp_path / "scan.npy", cloud)
    result = runner.invoke(app, ["reconstruct", "--points", str(tmp_path / "scan.npy"), "-o", str(tmp_path / "scan.obj"),
                                 "--weights", str(weights), "--save-stages", *FAST])
    assert result.exit_code == 0, result.output
    mesh = load_mesh(tmp_path / "scan.obj")
    scale = 20.0  # longest bbox side of the cloud (approximately)
    centre = mesh.bounds.mean(axis=0)
    assert np.allclose(centre, [5.0, -3.0, 2.0], atol=0.1 * scale)
    extent = mesh.extents.max()
    assert 2 * BLOB_RADIUS * scale * 0.6 < extent < 2 * BLOB_RADIUS * scale * 1.6
    pts = np.asarray(__import__("trimesh").load(tmp_path / "scan.points.ply").vertices)
    assert pts.shape == (300, 3) and np.allclose(np.linalg.norm(pts - [5.0, -3.0, 2.0], axis=1), 10.0, atol=0.5)


def test_model_onet_runs_stage_one_only(tmp_path: Path, weights: Path) -> None:
    photo = _photo(tmp_path / "a.png")
    result = runner.invoke(app, ["reconstruct", str(photo), "--model", "onet", "--save-stages", "--weights",
                                 str(weights), *FAST])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.obj").is_file()
    assert not (tmp_path / "a.points.ply").exists() and not (tmp_path / "a.stage1.obj").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["a.png", "b.png", "-o", "x.obj"],
        ["photos", "-o", "x.obj"],
        ["a.png", "-o", "x.obj", "--out-dir", "d"],
        ["a.png", "--format", "fbx"],
        ["a.png", "--threshold", "1.5"],
        [],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    result = runner.invoke(app, ["reconstruct", *args])
    assert result.exit_code == 2, result.output
    if "x.obj" in args and "--out-dir" not in args:
        assert "--out-dir" in result.stderr


def test_missing_weights_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import recon_cli.reconstruct as rc

    monkeypatch.setattr(rc, "default_weight_dirs", lambda: [tmp_path / "weights"])
    photo = _photo(tmp_path / "a.png")
    result = runner.invoke(app, ["reconstruct", str(photo)])
    assert result.exit_code == 1
    assert "no weights found: pass --weights" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["reconstruct", str(photo), "--weights", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1 and "nope.pt: no such checkpoint file" in result.stderr


def test_onnx_backend_exports_once_into_the_cache_and_device_errors(tmp_path: Path, weights: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from recon_cli.runtime.onnx_cache import checkpoint_digest

    monkeypatch.setenv("RECON_CACHE_DIR", str(tmp_path / "cache"))
    photo = _photo(tmp_path / "a.png")
    for run in range(2):
        result = runner.invoke(app, ["reconstruct", str(photo), "-o", str(tmp_path / f"a{run}.obj"), "--backend", "onnx",
                                     "--weights", str(weights), *FAST, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)["summary"]
        export = tmp_path / "cache" / "onnx" / checkpoint_digest(weights)
        assert summary["backend"] == "onnx" and summary["weights"] == str(export)
        assert (export / "recon_onnx.json").is_file()
        if run == 0:
            stamp = (export / "recon_onnx.json").stat().st_mtime_ns
    assert (export / "recon_onnx.json").stat().st_mtime_ns == stamp  # reused, not exported again
    assert [p.name for p in (tmp_path / "cache" / "onnx").iterdir()] == [export.name]  # no temp folders left
    if not torch.cuda.is_available():
        result = runner.invoke(app, ["reconstruct", str(photo), "--device", "cuda", "--weights", str(weights)])
        assert result.exit_code == 1 and "CUDA" in result.stderr


def test_library_reports_each_file_through_the_callback(tmp_path: Path, weights: Path) -> None:
    from recon_cli.reconstruct import ReconstructOptions, reconstruct_files

    photos = [_photo(tmp_path / f"{i}.png") for i in range(2)] + [tmp_path / "missing.png"]
    seen: list[str] = []
    totals: list[int] = []
    report = reconstruct_files(
        [str(p) for p in photos], out_dir=tmp_path / "o",
        options=ReconstructOptions(weights=weights, resolution=16, upsampling_steps=1, device="cpu", batch_size=2),
        on_start=totals.append, on_result=lambda r: seen.append(Path(r.input).name),
    )
    assert totals == [3] and sorted(seen) == ["0.png", "1.png", "missing.png"]
    assert [Path(r.input).name for r in report.results] == ["0.png", "1.png", "missing.png"]
    assert [r.error is None for r in report.results] == [True, True, False]
    assert "no such file" in report.results[2].error


def test_onnx_backend_matches_torch(tmp_path: Path, weights: Path) -> None:
    pytest.importorskip("onnxruntime")
    from recon_cli.io.checkpoint import load_checkpoint
    from recon_cli.runtime.onnx_export import export_onnx

    model, _, _ = load_checkpoint(weights)
    export_onnx(model, tmp_path / "onnx")
    photo = _photo(tmp_path / "a.png")
    docs = []
    for extra in (["--weights", str(weights)], ["--backend", "onnx", "--onnx-dir", str(tmp_path / "onnx")]):
        out = tmp_path / f"{len(docs)}.obj"
        result = runner.invoke(app, ["reconstruct", str(photo), "-o", str(out), "--json", *extra, *FAST])
        assert result.exit_code == 0, result.output
        docs.append(json.loads(result.stdout))
    assert docs[1]["summary"]["backend"] == "onnx"
    assert docs[0]["results"][0]["faces"] == docs[1]["results"][0]["faces"] > 0


def test_point_cloud_readers_and_normalisation(tmp_path: Path) -> None:
    import trimesh

    from recon_cli.errors import InputError
    from recon_cli.reconstruct import load_point_cloud, normalize_cloud

    pts = np.random.default_rng(0).uniform(-1, 1, (50, 3)) * [4.0, 2.0, 1.0] + [10.0, 0.0, -5.0]
    np.savetxt(tmp_path / "c.xyz", pts)
    np.savez(tmp_path / "c.npz", points=pts.astype(np.float16))
    trimesh.PointCloud(pts).export(tmp_path / "c.ply")
    for name, atol in [("c.xyz", 1e-6), ("c.ply", 1e-5), ("c.npz", 1e-2)]:
        assert np.allclose(load_point_cloud(tmp_path / name), pts, atol=atol), name
    unit, centre, scale = normalize_cloud(pts)
    assert np.allclose(unit.max(axis=0) + unit.min(axis=0), 0, atol=1e-6)
    assert np.isclose((unit.max(axis=0) - unit.min(axis=0)).max(), 1.0) and np.isclose(scale, np.ptp(pts, axis=0).max())
    assert np.allclose(unit * scale + centre, pts, atol=1e-5)
    np.save(tmp_path / "flat.npy", np.zeros((10, 2)))
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        load_point_cloud(tmp_path / "flat.npy")


def test_shard_takes_every_nth_input(tmp_path: Path) -> None:
    from recon_cli.reconstruct import ReconstructOptions, reconstruct_files

    for i in range(5):
        _photo(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.obj").write_text("v 0 0 0\n")
    opts = ReconstructOptions(skip_existing=True, shard=(1, 2), weights=tmp_path / "unused.pt")
    report = reconstruct_files([str(tmp_path)], options=opts)
    assert [Path(r.input).name for r in report.results] == ["1.png", "3.png"]
    assert all(r.skipped for r in report.results)


def _junk_inputs(folder: Path) -> dict[str, str]:
    """Bad photos -> the words their error line must contain."""
    folder.mkdir()
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "one_pixel.png")
    Image.new("RGB", (64, 48), (255, 255, 255)).save(folder / "white.png")
    Image.new("RGB", (64, 48), (0, 0, 0)).save(folder / "black.jpg")
    Image.new("RGBA", (64, 48), (10, 200, 10, 0)).save(folder / "clear.png")
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)  # no object anywhere
    Image.fromarray(noise).save(folder / "noise.png")
    return {"one_pixel.png": "too small", "white.png": "blank", "black.jpg": "blank", "clear.png": "fully transparent",
            "noise.png": "--mask"}


def test_junk_photos_fail_with_one_line_and_nothing_written(tmp_path: Path, weights: Path) -> None:
    expected = _junk_inputs(tmp_path / "junk")
    out = tmp_path / "out"
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "junk"), "--out-dir", str(out), "--weights", str(weights),
                                 "--json", "--save-input", "--save-mask", *FAST])
    assert result.exit_code == 1, result.output
    by_name = {Path(r["input"]).name: r for r in json.loads(result.stdout)["results"]}
    for name, words in expected.items():
        assert words in by_name[name]["error"] and name in by_name[name]["error"], by_name[name]
        lines = [line for line in result.stderr.splitlines() if name in line and "error" in line]
        assert len(lines) == 1 and words in lines[0]
    assert not out.exists() or not any(out.rglob("*"))


def test_mask_option_save_mask_and_bad_masks(tmp_path: Path, weights: Path) -> None:
    photo = _photo(tmp_path / "p.png")  # 80x60, object at rows 15:45, cols 25:55
    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 30:50] = 1
    Image.fromarray(mask).save(tmp_path / "m.png")
    base = ["reconstruct", str(photo), "--weights", str(weights), *FAST]
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a.obj"), "--mask", str(tmp_path / "m.png"), "--save-mask"])
    assert result.exit_code == 0, result.output
    saved = np.asarray(Image.open(tmp_path / "a_mask.png"))
    assert saved.shape == (60, 80) and np.array_equal(saved > 127, mask > 0)
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "b.obj"), "--save-mask"])  # segmented, photo grid
    assert result.exit_code == 0, result.output
    seg = np.asarray(Image.open(tmp_path / "b_mask.png")) > 127
    truth = np.zeros((60, 80), bool)
    truth[15:45, 25:55] = True
    assert (seg & truth).sum() / (seg | truth).sum() > 0.85  # (a 1-pixel halo on this tiny noise-free image)
    Image.new("L", (40, 30), 255).save(tmp_path / "small.png")
    Image.new("L", (80, 60), 0).save(tmp_path / "zero.png")
    for bad, words in (("small.png", "mask is 40x30 but the photo is 80x60"), ("zero.png", "all zero")):
        target = tmp_path / f"out_{bad}.obj"
        result = runner.invoke(app, [*base, "-o", str(target), "--mask", str(tmp_path / bad), "--save-mask"])
        assert result.exit_code == 1 and words in result.stderr and bad in result.stderr, result.output
        assert not target.exists() and not (tmp_path / f"out_{bad}_mask.png").exists()
    result = runner.invoke(app, ["reconstruct", str(photo), str(photo), "--out-dir", str(tmp_path / "x"),
                                 "--mask", str(tmp_path / "m.png")])
    assert result.exit_code == 2 and "--mask" in result.output


def test_segment_none_keeps_the_whole_photo(tmp_path: Path, weights: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    args = ["reconstruct", str(tmp_path / "noise.png"), "-o", str(tmp_path / "n.obj"), "--weights", str(weights), *FAST]
    assert runner.invoke(app, args).exit_code == 1  # auto: no confident object
    result = runner.invoke(app, [*args, "--segment", "none"])
    assert result.exit_code == 0, result.output


def test_mesh_filling_the_cube_is_reported(tmp_path: Path) -> None:
    import trimesh

    from recon_cli.reconstruct import fills_cube

    assert fills_cube(trimesh.creation.box(extents=(1.09, 1.09, 1.09)))
    assert not fills_cube(trimesh.creation.box(extents=(1.0, 1.0, 1.0)))  # a cube-shaped object: fine
    assert not fills_cube(trimesh.creation.box(extents=(1.09, 1.09, 0.5)))
