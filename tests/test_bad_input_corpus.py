"""Issue 16 acceptance: every command on a corpus of bad inputs.

Each case asserts: no traceback; exit code 1 (2 for usage errors); one line per bad file naming it and
the problem (`error: ...`; usage errors one `Error: ...` line); no partial (`*.part`) or non-finite
file left behind; and, in batches, the good files still done.
"""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from helpers_models import make_checkpoint
from PIL import Image
from typer.testing import CliRunner

from recon_cli.cli.app import app

runner = CliRunner()
FAST = ["--quality", "draft", "--resolution", "16", "--device", "cpu"]


@dataclass(frozen=True)
class Case:
    """One bad run: ``args`` (``{B}`` = the corpus folder, ``{W}`` = good weights, ``{D}`` = a dataset)."""

    name: str
    args: tuple[str, ...]
    code: int = 1
    named: tuple[str, ...] = ()    # each must appear in its own error line (bad files, bad paths)
    problem: str = ""              # a word of the problem, in the (first) error line
    done: tuple[str, ...] = ()     # outputs of good files in the same run, relative to the run folder
    absent: tuple[str, ...] = ()   # outputs that must not exist afterwards
    extra: list[str] = field(default_factory=list)


R = ["reconstruct", "--weights", "{W}", *FAST]

CASES: list[Case] = [
    # reconstruct: images
    Case("empty image file", (*R, "{B}/empty.png", "-o", "a.obj"), named=("empty.png",), absent=("a.obj",)),
    Case("random bytes .png", (*R, "{B}/random.png", "-o", "a.obj"), named=("random.png",), problem="not an image"),
    Case("truncated png", (*R, "{B}/trunc.png", "-o", "a.obj"), named=("trunc.png",), problem="truncated"),
    Case("text named .jpg", (*R, "{B}/text.jpg", "-o", "a.obj"), named=("text.jpg",)),
    Case("header-only 400 Mpx png", (*R, "{B}/huge.png", "-o", "a.obj"), named=("huge.png",), problem="too large"),
    Case("1x1 image", (*R, "{B}/one.png", "-o", "a.obj"), named=("one.png",), problem="too small"),
    Case("blank image", (*R, "{B}/blank.png", "-o", "a.obj"), named=("blank.png",), problem="blank"),
    Case("fully transparent image", (*R, "{B}/clear.png", "-o", "a.obj"), named=("clear.png",),
         problem="transparent"),
    Case("missing image", (*R, "{B}/missing.png", "-o", "a.obj"), named=("missing.png",), problem="no such"),
    Case("glob matching nothing", (*R, "{B}/nomatch*.png", "--out-dir", "out"), named=("nomatch*.png",),
         problem="no files match"),
    Case("batch with bad files", (*R, "{B}/good.png", "{B}/random.png", "{B}/one.png", "--out-dir", "out"),
         named=("random.png", "one.png"), done=("out/good.obj",), absent=("out/random.obj", "out/one.obj")),
    Case("folder with -o", (*R, "{B}/folder.png", "-o", "x.obj"), code=2, problem="is a folder"),
    # reconstruct: weights and outputs
    Case("NaN weights", ("reconstruct", "{B}/good.png", "-o", "a.obj", "--weights", "{B}/nan.pt", *FAST),
         named=("nan.pt",), problem="NaN", absent=("a.obj",)),
    Case("garbage weights", ("reconstruct", "{B}/good.png", "--weights", "{B}/garbage.pt", *FAST),
         named=("garbage.pt",), problem="not a recon checkpoint"),
    Case("truncated weights", ("reconstruct", "{B}/good.png", "--weights", "{B}/trunc.pt", *FAST),
         named=("trunc.pt",), problem="corrupt"),
    Case("pickled code in weights", ("reconstruct", "{B}/good.png", "--weights", "{B}/pickle.pt", *FAST),
         named=("pickle.pt",), problem="refusing"),
    Case("weights folder", ("reconstruct", "{B}/good.png", "--weights", "{B}/wdir", *FAST), named=("wdir",),
         problem="is a folder"),
    Case("out-dir is a file", (*R, "{B}/good.png", "{B}/good2.png", "--out-dir", "{B}/FILE"), named=("FILE",),
         problem="not a folder"),
    Case("-o is a folder", (*R, "{B}/good.png", "-o", "{B}/DIR"), named=("DIR",), problem="is a folder"),
    # reconstruct: point clouds
    Case("empty .xyz cloud", (*R, "--points", "{B}/empty.xyz", "-o", "a.obj"), named=("empty.xyz",)),
    Case("NaN cloud", (*R, "--points", "{B}/nan.npy", "-o", "a.obj"), named=("nan.npy",), problem="finite"),
    Case("two-point cloud", (*R, "--points", "{B}/two.npy", "-o", "a.obj"), named=("two.npy",),
         problem="at least 4"),
    Case("npz without points", (*R, "--points", "{B}/nokey.npz", "-o", "a.obj"), named=("nokey.npz",),
         problem="'points'"),
    # reconstruct: usage
    Case("threshold out of range", (*R, "{B}/good.png", "--threshold", "1.5"), code=2, problem="probability"),
    Case("flag given a value", (*R, "--json", "true", "{B}/good.png"), code=2, problem="take no value"),
    # info / convert
    Case("random bytes .stl", ("info", "{B}/rand.stl"), named=("rand.stl",), problem="not an STL"),
    Case("obj face past the vertices", ("info", "{B}/badidx.obj"), named=("badidx.obj",), problem="vertex"),
    Case("obj without triangles", ("info", "{B}/notri.obj"), named=("notri.obj",), problem="no triangles"),
    Case("missing mesh", ("info", "{B}/missing.obj"), named=("missing.obj",), problem="no such"),
    Case("NaN vertices", ("convert", "{B}/nanv.obj", "out.stl"), named=("nanv.obj",), problem="non-finite",
         absent=("out.stl",)),
    Case("convert into a folder", ("convert", "{B}/box.obj", "{B}/DIR", "--format", "stl"), named=("DIR",),
         problem="is a folder"),
    Case("unknown output suffix", ("convert", "{B}/box.obj", "out.fbx"), named=("out.fbx",), problem="suffix",
         absent=("out.fbx",)),
    Case("convert batch with a bad file", ("convert", "{B}/box.obj", "{B}/rand.stl", "--out-dir", "cv",
                                           "--format", "stl"),
         named=("rand.stl",), done=("cv/box.stl",), absent=("cv/rand.stl",)),
    # export-onnx
    Case("export NaN weights", ("export-onnx", "--weights", "{B}/nan.pt", "-o", "onx"), named=("nan.pt",),
         problem="NaN", absent=("onx",)),
    Case("export into a file", ("export-onnx", "--weights", "{W}", "-o", "{B}/FILE"), named=("FILE",)),
    # eval
    Case("eval missing dataset", ("eval", "--data", "{B}/nodata", "--meshes", "{B}/DIR"), named=("nodata",),
         problem="does not exist"),
    Case("eval dataset is a file", ("eval", "--data", "{B}/FILE", "--meshes", "{B}/DIR"), named=("FILE",),
         problem="is a file"),
    Case("eval NaN weights", ("eval", "--data", "{D}", "--weights", "{B}/nan.pt", "--limit", "1",
                              "--device", "cpu"), named=("nan.pt",), problem="NaN"),
    Case("eval merge of a corrupt objects.csv", ("eval", "--merge", "{B}/merge"), named=("objects.csv",),
         problem="cannot read"),
    Case("eval out is a file", ("eval", "--data", "{D}", "--meshes", "{B}/DIR", "--out", "{B}/FILE"),
         named=("FILE",)),
    # data
    Case("check missing dataset", ("data", "check", "{B}/nodata"), named=("nodata",), problem="does not exist"),
    Case("check a file", ("data", "check", "{B}/FILE"), named=("FILE",), problem="is a file"),
    Case("build with bad meshes", ("data", "build", "{B}/meshes_in", "-o", "built", "--views", "1",
                                   "--points", "2000"),
         named=("badidx", "rand"), done=("built/03001627/box/model.binvox",)),
    Case("photos from a missing dataset", ("data", "photos", "{B}/nodata", "-o", "ph"), named=("nodata",),
         absent=("ph",)),
    Case("features of a missing dataset", ("data", "features", "{B}/nodata"), named=("nodata",)),
    # render
    Case("render random bytes .stl", ("render", "{B}/rand.stl", "-o", "r.png"), named=("rand.stl",),
         problem="not an STL", absent=("r.png",)),
    Case("render batch with bad meshes", ("render", "{B}/render_in", "--out-dir", "ro"),
         named=("badidx.obj", "rand.stl"), done=("ro/box.png",), absent=("ro/badidx.png", "ro/rand.png")),
    Case("build into a file", ("data", "build", "{B}/meshes_in", "-o", "{B}/FILE"), named=("FILE",)),
    Case("synth into a file", ("data", "synth", "-o", "{B}/FILE", "-n", "1", "-c", "chair"), named=("FILE",)),
    Case("synth unknown category", ("data", "synth", "-o", "s", "-n", "1", "-c", "bogus"), named=("bogus",),
         absent=("s",)),
    Case("preview without renders", ("data", "preview", "{B}/DIR", "-o", "sheet.png"), named=("DIR",),
         absent=("sheet.png",)),
    # train
    Case("train missing dataset", ("train", "--data", "{B}/nodata", "--model", "onet", "--out", "r"),
         named=("nodata",)),
    Case("train resume without last.pt", ("train", "--data", "{D}", "--model", "onet", "--out", "r", "--resume"),
         problem="no last.pt"),
    Case("train unknown config key", ("train", "--model", "onet", "--set", "optim.bogus=1", "--dry-run"),
         named=("bogus",)),
    Case("train without --model", ("train", "--data", "{D}", "--out", "r"), code=2, problem="--model"),
]


def _png(path: Path, width: int, height: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    photo = np.full((60, 80, 3), 128, np.uint8)
    photo[15:45, 25:55] = (200, 40, 40)
    Image.fromarray(photo).save(b / "good.png")
    Image.fromarray(photo[:, ::-1].copy()).save(b / "good2.png")
    (b / "empty.png").write_bytes(b"")
    (b / "random.png").write_bytes(rng.bytes(3000))
    whole = (b / "good.png").read_bytes()
    (b / "trunc.png").write_bytes(whole[: len(whole) // 2])
    (b / "text.jpg").write_text("hello, I am not a JPEG\n")
    _png(b / "huge.png", 20_000, 20_000)
    Image.new("RGB", (1, 1), (255, 0, 0)).save(b / "one.png")
    Image.new("RGB", (200, 200), (255, 255, 255)).save(b / "blank.png")
    Image.new("RGBA", (200, 200), (0, 0, 0, 0)).save(b / "clear.png")
    (b / "folder.png").mkdir()
    shutil.copy(b / "good.png", b / "folder.png" / "inner.png")
    # weights
    good = make_checkpoint(b / "w.pt", "doccnet", nonempty=True)
    data = torch.load(good, weights_only=True)
    key = next(k for k, v in data["state_dict"].items() if v.is_floating_point())
    data["state_dict"][key] = torch.full_like(data["state_dict"][key], float("nan"))
    torch.save(data, b / "nan.pt")
    (b / "garbage.pt").write_bytes(rng.bytes(5000))
    (b / "trunc.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    torch.save({"format_version": 1, "state_dict": {}, "hook": print}, b / "pickle.pt")
    (b / "wdir").mkdir()
    # point clouds
    (b / "empty.xyz").write_text("")
    np.save(b / "nan.npy", np.full((10, 3), np.nan))
    np.save(b / "two.npy", rng.normal(size=(2, 3)))
    np.savez(b / "nokey.npz", x=rng.normal(size=(50, 3)))
    # meshes
    (b / "rand.stl").write_bytes(rng.bytes(2000))
    (b / "badidx.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 9\n")
    (b / "notri.obj").write_text("v 0 0 0\n")
    box = trimesh.creation.box()
    box.export(b / "box.obj")
    text = (b / "box.obj").read_text().replace("v ", "v nan ", 1).replace("v nan ", "v nan 0 0\nv ", 1)
    (b / "nanv.obj").write_text(text)
    (b / "meshes_in" / "chair").mkdir(parents=True)
    shutil.copy(b / "box.obj", b / "meshes_in" / "chair" / "box.obj")
    shutil.copy(b / "badidx.obj", b / "meshes_in" / "chair" / "badidx.obj")
    shutil.copy(b / "rand.stl", b / "meshes_in" / "chair" / "rand.stl")
    shutil.copytree(b / "meshes_in" / "chair", b / "render_in")
    # paths of the wrong kind
    (b / "FILE").write_text("a file")
    (b / "DIR").mkdir()
    (b / "merge").mkdir()
    (b / "merge" / "objects.csv").write_text("garbage,,,\n1,2,3\n")
    return b


def _fill(args: tuple[str, ...], corpus: Path, dataset: Path) -> list[str]:
    return [a.format(B=corpus, W=corpus / "w.pt", D=dataset) for a in args]


def _left_behind(folder: Path) -> list[str]:
    """Partial files, and mesh files with non-finite vertices."""
    bad = []
    for path in folder.rglob("*"):
        if path.is_file() and (path.name.endswith(".part") or ".tmp." in path.name):
            bad.append(str(path))
        elif path.suffix in (".obj", ".off") and path.is_file():
            if re.search(r"\b(nan|inf)\b", path.read_text(errors="replace"), re.IGNORECASE):
                bad.append(str(path))
    return bad


def test_the_corpus_has_at_least_30_kinds_over_every_command() -> None:
    assert len(CASES) >= 30
    commands = {c.args[0] if c.args[0] != "data" else f"data {c.args[1]}" for c in CASES}
    assert commands >= {"reconstruct", "info", "convert", "export-onnx", "eval", "train", "data check",
                        "data build", "data synth", "data preview", "data photos", "data features", "render"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, corpus: Path, tiny_dataset: Path, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, _fill(case.args, corpus, tiny_dataset), terminal_width=240)
    out = result.output
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == case.code, out
    if case.code == 2:
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1, result.stderr
        assert case.problem in lines[0], result.stderr
    else:
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert lines, result.stderr
        assert len(lines) == max(1, len(case.named)), result.stderr  # one line per bad file
        for name in case.named:
            assert sum(name in ln for ln in lines) == 1, (name, result.stderr)
        assert case.problem in lines[0], (case.problem, result.stderr)
    for rel in case.done:
        assert (tmp_path / rel).exists(), (rel, out)
    for rel in case.absent:
        assert not (tmp_path / rel).exists(), rel
    assert _left_behind(tmp_path) == []
    after = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    assert after == before  # nothing new or changed among the inputs and the wrong-kind FILE/DIR targets
