"""`colorcli train` through Typer's CliRunner on tiny real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.training.loop import load_resume_state, read_metrics

runner = CliRunner()
TINY = ["--width", "0.0625", "--crop", "32", "--batch-size", "2", "--workers", "0",
        "--val-images", "2"]  # fmt: skip


@pytest.fixture(autouse=True)
def _threads() -> object:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray((rng.random((40, 44, 3)) * 255).astype(np.uint8)).save(folder / f"p{i}.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return tmp_path / "photos"


def test_train_resume_and_refuse(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["train", str(photos), "--out", str(out), "--steps", "2", "--val-every", "2", *TINY]
    )
    assert res.exit_code == 0, res.output
    assert "trained to step 2" in res.output
    assert "broken.png" in res.output  # reported, not fatal
    assert (out / "model.pt").is_file() and (out / "loss.png").is_file()
    assert load_resume_state(out)["config"]["objective"] == "classification"

    again = runner.invoke(app, ["train", str(photos), "--out", str(out), *TINY])
    assert again.exit_code == 2 and "not empty" in again.output

    more = runner.invoke(app, ["train", "--resume", str(out), "--steps", "3"])
    assert more.exit_code == 0, more.output
    recs = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    assert recs[-1]["step"] == 3


def test_usage_errors(photos: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", str(photos)])
    assert res.exit_code == 2 and "--out" in res.output
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "photos" in res.output
    res = runner.invoke(
        app, ["train", str(photos), "--out", str(tmp_path / "y"), "--objective", "cgan",
              "--crop", "48", "--depth", "5"],
    )  # fmt: skip
    assert res.exit_code == 2 and "multiple of 32" in res.output
    res = runner.invoke(app, ["train", str(tmp_path / "missing"), "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "missing" in res.output
    res = runner.invoke(app, ["train", "--help"])
    assert res.exit_code == 0 and "--objective" in res.output and "--no-rebalance" in res.output
