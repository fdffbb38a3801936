"""The root CLI: version, help, error handling."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from recon_cli import __version__
from recon_cli.cli.app import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"recon {__version__}"


def test_python_dash_m() -> None:
    out = subprocess.run([sys.executable, "-m", "recon_cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"recon {__version__}"


def test_unknown_command_is_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2


def test_every_subpackage_is_listed_in_pyproject() -> None:
    """pyproject lists packages explicitly (to map weights/ into the wheel): none may be missing."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(root).parts)
        for p in (root / "recon_cli").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set()
