"""`colorcli train` through Typer's CliRunner on tiny real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.training.loop import load_resume_state, read_metrics

runner = CliRunner()
TINY = ["--width", "0.0625", "--crop", "32", "--batch-size", "2", "--workers", "0",
        "--val-images", "2"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_default_preset_and_paper_preset(photos: Path, tmp_path: Path) -> None:
    """Without options the run is the quick preset (effnet-unet when its ImageNet weights are
    installed, else a narrow eccv16, a few thousand steps); --preset paper is the published
    schedule; explicit options win over both."""
    from colorcli.training.config import QUICK_STEPS, pretrained_available

    quick = tmp_path / "quick"
    res = runner.invoke(app, ["train", str(photos), "--out", str(quick), "--steps", "1", *TINY])
    assert res.exit_code == 0, res.output
    cfg = load_resume_state(quick)["config"]
    assert cfg["arch"] == ("effnet-unet" if pretrained_available() else "eccv16")
    paper = tmp_path / "paper"
    res = runner.invoke(
        app, ["train", str(photos), "--out", str(paper), "--preset", "paper", "--steps", "1",
              *TINY],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = load_resume_state(paper)["config"]
    assert (cfg["arch"], cfg["lr"], cfg["weight_decay"]) == ("eccv16", 3e-5, 1e-3)
    assert cfg["batch_size"] == 2 and cfg["steps"] == 1  # given: kept
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "--preset" in res.output and "paper" in res.output and str(QUICK_STEPS) in res.output


def test_projected_duration_is_printed_and_warned_beyond_a_day(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from colorcli.cli.train_report import Reporter as _Reporter
    from colorcli.cli.train_report import format_duration
    from colorcli.training import Projected

    res = runner.invoke(
        app, ["train", str(photos), "--out", str(tmp_path / "r"), "--steps", "8",
              "--val-every", "100", "--save-every", "100", *TINY],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "projected duration:" in res.output and "s/step" in res.output
    assert "more than a day" not in res.output
    assert "warning: only 1 validation photo(s)" in res.output  # 4 photos, 5 % held out

    with _Reporter() as rep:
        rep(Projected(6, 450_000, 17.9, 17.9 * 449_994))
    err = capsys.readouterr().err
    assert "warning:" in err and "93 days" in err and "more than a day" in err
    assert "--preset quick" in err
    assert format_duration(42) == "42 s" and format_duration(3 * 3600 + 300) == "3 h 05 min"
