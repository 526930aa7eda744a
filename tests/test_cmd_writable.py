"""Every command that writes refuses an unwritable output up front: exit 2, one line, before
any model, data or image is loaded (``fsutil.check_writable``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app

runner = CliRunner()


def _photos(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def _commands(tmp_path: Path, blocked: Path) -> dict[str, list[str]]:
    photos = _photos(tmp_path / "photos")
    gray = tmp_path / "gray.png"
    Image.new("L", (16, 16), 128).save(gray)
    return {
        "colorize": ["colorize", str(gray), "-o", str(blocked / "out")],
        "train": ["train", str(photos), "--out", str(blocked / "run")],
        "build-bins": ["build-bins", "-o", str(blocked / "bins.npy")],
        "rebalance": ["rebalance", str(photos), "-o", str(blocked / "prior.npz")],
    }


@pytest.mark.parametrize("name", ["colorize", "train", "build-bins", "rebalance"])
def test_file_in_the_way_is_refused_up_front(tmp_path: Path, name: str) -> None:
    blocked = tmp_path / "blocker"
    blocked.write_text("a file where a folder should be")
    args = _commands(tmp_path, blocked)[name]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "blocker" in lines[0] and "not a folder" in lines[0]


@pytest.mark.parametrize("name", ["colorize", "train", "build-bins", "rebalance"])
def test_unwritable_folder_is_refused_up_front(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    args = _commands(tmp_path, locked)[name]
    real_open = open

    def deny(file: object, *a: object, **k: object) -> object:  # a read-only folder, even as root
        if Path(str(file)).parent == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", deny)
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "cannot write to" in res.output and "Permission denied" in res.output
    assert list(locked.iterdir()) == []
