"""The README's Python API example, run verbatim with the shipped weights."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_api_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's Python API section has no ```python block"
    return match.group(1)


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    if not (ROOT / "weights" / "doccnet.pt").is_file():
        pytest.skip("the shipped weights/doccnet.pt is not in this checkout")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    code = readme_api_example()
    exec(compile(code, "README.md (Python API)", "exec"), {"__name__": "readme_example"})  # noqa: S102
    import trimesh

    mesh = trimesh.load(tmp_path / "chair.obj", force="mesh")
    assert len(mesh.faces) > 1000 and mesh.extents.max() < 1.2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] in ("border (320, 320)", "model (320, 320)", "grabcut (320, 320)")
    faces, shape = lines[1].split(" ", 1)
    assert int(faces) > 100 and shape == "(300, 3)"
    assert lines[2].startswith("True [") and os.path.getsize(tmp_path / "chair.obj") > 10_000
