"""`colorcli info` and `colorcli models`: facts from the file itself, JSON, shipped and cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _model_files import save_legacy, save_tiny
from safetensors.torch import save_file
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.modelcard import cached_hub_models, describe
from colorcli.models import list_models
from colorcli.models.registry import model_summary

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("m") / "model.pt", half=True)


def test_describe_reads_every_fact_from_the_file(tiny: Path, tmp_path: Path) -> None:
    info = describe(str(tiny))
    assert (info.arch, info.kind, info.container, info.storage) == (
        "eccv16", "classification", "safetensors", "float16",
    )  # fmt: skip
    from colorcli.checkpoint import load_model

    model = load_model(tiny, "cpu").model
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert info.file_bytes == tiny.stat().st_size
    assert (info.bins, info.decode_method, info.temperature) == (313, "annealed", 0.42)
    assert (info.input_size, info.step, info.size_multiple) == (64, 300, 8)
    assert info.train["data"] == [
        "data/imagenet-sample", "data/bsds500/train", "data/bsds500/val",
    ]  # fmt: skip
    assert info.train["steps"] == 400 and info.train["batch_size"] == 8
    assert info.metrics == {"val_auc": 88.25, "val_psnr": float("inf")}
    assert any("max rebalanced AuC" in n for n in info.notes)
    # a .pt from before says the same, only its container differs
    old = describe(str(save_legacy(tiny, tmp_path / "old.pt")))
    assert old.container == "pytorch"
    assert {**old.to_dict(), "container": "", "path": "", "source": "", "file_bytes": 0} == {
        **info.to_dict(), "container": "", "path": "", "source": "", "file_bytes": 0,
    }  # fmt: skip


def test_info_table_and_json(tiny: Path) -> None:
    res = runner.invoke(app, ["info", str(tiny)])
    assert res.exit_code == 0, res.output
    for needle in (
        "eccv16 (classification)", "313", "annealed, temperature 0.42", "64 px",
        "data/imagenet-sample", "300 of 400", "held-out val_auc", "88.25", "safetensors",
    ):  # fmt: skip
        assert needle in res.output, (needle, res.output)
    res = runner.invoke(app, ["info", str(tiny), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["arch"] == "eccv16" and data["bins"] == 313 and data["step"] == 300
    assert data["metrics"]["val_psnr"] == float("inf")  # JSON Infinity, as Python reads it
    assert data["train"]["data"][0] == "data/imagenet-sample"


def test_info_default_and_hub(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLORCLI_WEIGHTS", str(tiny))
    res = runner.invoke(app, ["info", "default", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["path"] == str(tiny)
    cache = _hub_cache(tmp_path, monkeypatch, {"someone/colorizers": {"model.safetensors": tiny}})
    res = runner.invoke(app, ["info", "hf://someone/colorizers/model.safetensors", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["path"].startswith(str(cache))


def test_info_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    for path, code, needle in (
        (tmp_path / "missing.pt", 2, "no such file"),
        (tmp_path / "notes.txt", 1, "a text file"),
    ):
        res = runner.invoke(app, ["info", str(path)])
        assert res.exit_code == code, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output


def _hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repos: dict[str, dict[str, Path]]
) -> Path:
    """The huggingface_hub cache layout holding ``repos`` at revision main, offline."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    for repo_id, files in repos.items():
        root = cache / f"models--{repo_id.replace('/', '--')}"
        (root / "refs").mkdir(parents=True)
        (root / "refs" / "main").write_text(commit)
        for name, src in files.items():
            target = root / "snapshots" / commit / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_models_lists_architectures_shipped_and_cached(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    _hub_cache(
        tmp_path,
        monkeypatch,
        {
            "someone/colorizers": {"v1/model.safetensors": tiny, "notes.pt": other},
            "someone/llm": {"model.safetensors": other},
        },
    )
    found = cached_hub_models()
    assert [m.spec for m in found] == ["hf://someone/colorizers/v1/model.safetensors"]
    monkeypatch.setenv("COLORCLI_WEIGHTS", str(tiny))
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for name in list_models():
        line = next(ln for ln in lines if ln.split() and ln.split()[0] == name)
        assert model_summary(name).replace("``", "")[:30] in line
    assert any(ln.strip().startswith("default") and str(tiny) in ln for ln in lines)
    assert any("hf://someone/colorizers/v1/model.safetensors" in ln for ln in lines)
    assert "someone/llm" not in res.output
    data = json.loads(runner.invoke(app, ["models", "--json"]).output)
    assert {a["name"] for a in data["architectures"]} == set(list_models())
    assert [m["where"] for m in data["models"]] == ["shipped", "hub cache"]


def test_model_summary_is_the_docstring_first_line() -> None:
    for name in list_models():
        text = model_summary(name)
        assert text and "\n" not in text, name
