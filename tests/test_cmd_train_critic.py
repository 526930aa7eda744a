"""`colorcli train-critic` end to end with Typer's CliRunner on tiny synthetic photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from colorcli.checkpoint import save_model
from colorcli.cli import app
from colorcli.critic import load_critic
from colorcli.models import create_model

runner = CliRunner()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(8):
        g = np.random.default_rng(100 + i)
        img = cv2.resize(g.random((3, 4, 3)), (44, 36), interpolation=cv2.INTER_LINEAR)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(d / f"p{i}.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return d


@pytest.fixture(scope="module")
def gray_colorizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("eccv16-regression", width=0.0625)
    head: Any = model.head
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    path = tmp_path_factory.mktemp("colorizer") / "gray.pt"
    save_model(path, model, arch="eccv16-regression", arch_kwargs={"width": 0.0625}, bins=None)
    return path


def _args(photos: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train-critic",
        str(photos),
        "--model",
        str(model),
        "--out",
        str(out),
        "--steps",
        "20",
        "--batch-size",
        "4",
        "--crop",
        "32",
        "--width",
        "8",
        "--layers",
        "2",
        "--lr",
        "1e-3",
        "--val-split",
        "0.3",
        "--device",
        "cpu",
        *extra,
    ]


def test_train_critic_command(photos: Path, gray_colorizer: Path, tmp_path: Path) -> None:
    out = tmp_path / "critic.pt"
    result = runner.invoke(app, _args(photos, gray_colorizer, out, "--global-pool"))
    assert result.exit_code == 0, result.output
    assert "corrupt.jpg" in result.output  # reported, not fatal
    summary = [ln for ln in result.output.splitlines() if ln.startswith("critic saved to")]
    assert len(summary) == 1
    crit = load_critic(out)
    acc = crit.meta["accuracy"]
    assert f"held-out accuracy {100 * acc['balanced']:.1f}% balanced" in summary[0]
    assert crit.arch_kwargs == {"width": 8, "n_layers": 2, "norm": "instance", "global_pool": True}
    assert crit.meta["steps"] == 20 and crit.meta["colorizer"]["name"] == "gray.pt"

    # a second run does not overwrite without --overwrite
    before = out.read_bytes()
    again = runner.invoke(app, _args(photos, gray_colorizer, out))
    assert again.exit_code == 2
    lines = [ln for ln in again.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "already exists" in lines[0] and "--overwrite" in lines[0]
    assert out.read_bytes() == before
    ok = runner.invoke(app, _args(photos, gray_colorizer, out, "--overwrite", "--norm", "batch"))
    assert ok.exit_code == 0, ok.output
    assert load_critic(out).arch_kwargs["norm"] == "batch"


def test_train_critic_with_a_critic_as_colorizer_is_one_line_error(
    photos: Path, gray_colorizer: Path, tmp_path: Path
) -> None:
    critic = tmp_path / "critic.pt"
    assert runner.invoke(app, _args(photos, gray_colorizer, critic, "--steps", "1")).exit_code == 0
    result = runner.invoke(app, _args(photos, critic, tmp_path / "c2.pt"))
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "critic.pt" in lines[0]
    assert "a critic file, not a colorizer" in lines[0]
    assert not (tmp_path / "c2.pt").exists()


def test_train_critic_needs_model_and_out(photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train-critic", str(photos), "--out", str(tmp_path / "c.pt")])
    assert result.exit_code == 2
    assert "--model" in result.output
