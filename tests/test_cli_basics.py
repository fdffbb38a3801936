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
