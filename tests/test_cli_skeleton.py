from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from colorcli import __version__
from colorcli.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("build-bins", "rebalance", "train", "eval", "colorize"):
        assert cmd in res.output


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "colorcli", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout
