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


@pytest.fixture()
def synthetic(tmp_path: Path) -> Path:
    import cv2
    import numpy as np
    from PIL import Image

    d = tmp_path / "synthetic"
    d.mkdir()
    for i in range(5):
        g = np.random.default_rng(i)
        img = cv2.resize(g.random((3, 4, 3)), (44, 30), interpolation=cv2.INTER_LINEAR)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(d / f"s{i}.png")
    return d


@pytest.fixture()
def critic_file(tmp_path: Path) -> Path:
    import torch

    from colorcli.critic import save_critic
    from colorcli.models import create_model

    torch.manual_seed(0)
    kw = {"width": 4, "n_layers": 2, "norm": "instance"}
    meta = {"colorizer": {"name": "tiny.pt"}, "accuracy": {"balanced": 0.875}}
    return save_critic(
        tmp_path / "critic.pt",
        create_model("patchgan", **kw),
        arch="patchgan",
        arch_kwargs=kw,
        input_size=32,
        meta=meta,
    )


def test_eval_with_critic(synthetic: Path, critic_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["eval", str(synthetic), "--metric", "auc", "--critic", str(critic_file)]
    result = runner.invoke(app, [*args, "--size", "32", "--worst", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "judged real %" in result.output
    assert "Realism critic:" in result.output and "trained against tiny.pt" in result.output
    assert "87.5%" in result.output
    data = json.loads((out / "results.json").read_text())
    # --critic adds realism beside the chosen metric
    assert set(data["aggregate"]["gray"]) == {"auc", "auc_rebal", "realism"}
    gray = data["realism"]["models"]["gray"]
    scores = [r["values"]["gray"]["realism"] for r in data["per_image"]]
    assert gray["fooling_rate"] == pytest.approx(sum(s > 0.5 for s in scores) / len(scores))
    assert [w["realism"] for w in gray["worst"]] == sorted(scores)[:2]
    assert (out / "worst_realism.png").is_file()
    assert "worst_realism" in data["outputs"]


def test_eval_realism_without_critic_is_usage_error(synthetic: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["eval", str(synthetic), "--metric", "realism", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--critic" in lines[0]
    assert not (tmp_path / "o").exists()


def test_eval_colorizer_as_critic_is_one_line_error(
    synthetic: Path, tiny_model: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        ["eval", str(synthetic), "--critic", str(tiny_model), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a critic" in lines[0] and str(tiny_model.name) in lines[0]


# --- issue 13 --------------------------------------------------------------------------------


def test_eval_table_is_full_width_when_not_a_terminal(synthetic: Path, tmp_path: Path) -> None:
    """Piped output was cut at 80 columns ("colourfulne", "27.9±7")."""
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["eval", str(synthetic), "--size", "32", "--full-res", "--out", str(out)],
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "colourfulness" in result.output and "colourfulne\n" not in result.output
    data = json.loads((out / "results.json").read_text())
    gray = data["aggregate"]["gray"]["colorfulness"]
    assert f"{gray['mean']:.1f}±{gray['std']:.1f}" in result.output
    rows = [ln for ln in result.output.splitlines() if ln.strip().startswith("random")]
    assert rows and all(ln.rstrip().endswith(" 5") for ln in rows)  # the n column is there
    gt = next(ln for ln in result.output.splitlines() if ln.strip().startswith("ground-truth"))
    assert " inf " in gt and "144" not in gt  # PSNR of the truth against itself


def test_eval_refuses_an_existing_report(synthetic: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["eval", str(synthetic), "--size", "32", "--metric", "auc", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output and "gray" not in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_eval_unwritable_out_is_a_usage_error_before_any_work(
    synthetic: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["eval", str(synthetic), "--out", str(blocker / "sub")])
    assert res.exit_code == 2 and "cannot write" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.strip()]) == 1


def test_eval_prints_the_table_when_writing_fails(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("colorcli.evaluate.output.atomic_write_bytes", full_disk)
    res = runner.invoke(
        app, ["eval", str(synthetic), "--size", "32", "--metric", "auc", "--out", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert "ground-truth" in res.output and "100.0±0.0" in res.output  # the results are shown
    assert "No space left on device" in res.output.splitlines()[-1]
    assert "wrote" not in res.output and "Traceback" not in res.output
