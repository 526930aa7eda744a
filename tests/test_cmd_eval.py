"""`colorcli eval` end to end with Typer's CliRunner on a few real photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from colorcli.cli import app

runner = CliRunner()


@pytest.fixture()
def photos(shared_data: Path, tmp_path: Path) -> Path:
    src = shared_data / "bsds500" / "test"
    files = sorted(src.glob("*.jpg"))[:4]
    if len(files) < 4:
        pytest.skip(f"fewer than 4 photos in {src}")
    d = tmp_path / "photos"
    d.mkdir()
    for f in files:
        shutil.copy(f, d / f.name)
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    return d


def test_eval_baselines_on_real_photos(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "eval",
            str(photos),
            "--metric",
            "auc",
            "--metric",
            "ssim",
            "--size",
            "64",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gray" in result.output and "ground-truth" in result.output
    assert "corrupt.jpg" in result.output  # reported, not fatal
    data = json.loads((out / "results.json").read_text())
    assert data["counts"]["evaluated"] == 4 and data["counts"]["failed"] == 1
    assert {"gray", "random", "ground-truth"} <= set(data["aggregate"])
    gray_auc = data["aggregate"]["gray"]["auc"]["mean"]
    assert 60 < gray_auc < 100
    assert data["aggregate"]["ground-truth"]["auc"]["mean"] == pytest.approx(100.0)
    assert set(data["aggregate"]["gray"]) == {"auc", "auc_rebal", "ssim"}
    for name in ("results.csv", "auc_curve.png", "contact_sheet.png"):
        assert (out / name).is_file()


def test_eval_empty_folder_is_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["eval", str(empty), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no image files" in lines[0]
    assert not (tmp_path / "o").exists()


def test_eval_no_model_and_no_baselines_is_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path), "--no-baselines"])
    assert result.exit_code == 2
    assert "nothing to evaluate" in result.output
