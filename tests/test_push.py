"""`colorcli push`: the dry-run folder in full, and the upload calls against a stand-in Hub API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
import torch
from _model_files import save_legacy, save_tiny
from typer.testing import CliRunner

from colorcli.checkpoint import load_model
from colorcli.cli import app
from colorcli.modelcard import parse_hf_repo

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("m") / "model.pt")


def _front_matter(card: str) -> tuple[dict[str, Any], str]:
    """A reader for the small YAML subset the card uses: ``key: value`` and ``- item`` lists."""
    assert card.startswith("---\n")
    head, body = card[4:].split("\n---\n", 1)
    meta: dict[str, Any] = {}
    key = ""
    for line in head.splitlines():
        if line.startswith("  - "):
            meta[key].append(line[4:].strip('"'))
        else:
            key, _, value = line.partition(":")
            meta[key] = value.strip().strip('"') or []
    return meta, body


def test_dry_run_writes_exactly_the_upload(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "upload"
    res = runner.invoke(app, ["push", str(tiny), "hf://me/colorizer@v1", "--dry-run", str(out)])
    assert res.exit_code == 0, res.output
    assert "nothing uploaded" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == tiny.read_bytes()  # already safetensors
    meta, body = _front_matter((out / "README.md").read_text())
    assert meta["library_name"] == "colorcli" and meta["license"] == "mit"
    assert meta["pipeline_tag"] == "image-to-image"
    assert meta["tags"] == ["colorcli", "colorization", "image-to-image", "eccv16"]
    assert meta["datasets"] == ["bsds500", "imagenet-sample"]
    spec = "hf://me/colorizer@v1/model.safetensors"
    assert f"colorcli colorize photo.jpg scans/ -o colorized/ --model {spec}" in body
    assert "| architecture | `eccv16` (classification) |" in body
    assert "| parameters |" in body and "| bins | 313 |" in body
    assert "| decoding | annealed, T = 0.42 |" in body
    assert "`data/imagenet-sample`, `data/bsds500/train`, `data/bsds500/val`" in body
    assert "| steps trained | 300 |" in body and "| steps planned | 400 |" in body
    assert "| val_auc | 88.25 |" in body and "| val_psnr | — |" in body
    assert "on 16 validation images" in body
    assert "$" not in body  # every template field filled


def test_dry_run_converts_old_pt_and_takes_options(tiny: Path, tmp_path: Path) -> None:
    old = save_legacy(tiny, tmp_path / "old.pt")
    out = tmp_path / "up"
    res = runner.invoke(
        app,
        ["push", str(old), "hf://me/c", "--dry-run", str(out), "--license", "cc-by-4.0",
         "--dataset", "me/photos", "--dataset", "bsds500"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (out / "model.safetensors").read_bytes()[8:9] == b"{"
    lum = torch.rand(1, 1, 32, 32) * 100
    a, b = load_model(old, "cpu"), load_model(out / "model.safetensors", "cpu")
    torch.testing.assert_close(a.predict_ab(lum), b.predict_ab(lum), rtol=0, atol=0)
    meta, body = _front_matter((out / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0" and meta["datasets"] == ["me/photos", "bsds500"]
    assert "--model hf://me/c/model.safetensors" in body


def test_usage_errors(tiny: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    for args, needle in (
        ([str(tiny), "hf://me", "--dry-run", str(tmp_path / "a")], "bad Hub repository"),
        ([str(tiny), "me/repo", "--dry-run", str(tmp_path / "b")], "bad Hub repository"),
        ([str(tiny), "hf://me/repo", "--dry-run", str(busy)], "not an empty folder"),
        ([str(tmp_path / "none.pt"), "hf://me/repo", "--dry-run", str(tmp_path / "c")],
         "no such file"),
    ):  # fmt: skip
        res = runner.invoke(app, ["push", *args])
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], res.output
    assert parse_hf_repo("hf://me/repo@dev") == ("me/repo", "dev")


class FakeApi:
    """Records the calls ``push`` makes, and what the uploaded folder held at that moment."""

    calls: list[tuple[str, Any]]
    fail: Exception | None = None

    def __init__(self) -> None:
        FakeApi.calls = []

    def create_repo(self, repo_id: str, **kw: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        if self.fail is not None:
            raise self.fail
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw: Any) -> Any:
        folder = Path(kw["folder_path"])
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        self.calls.append(("upload_folder", {**kw, "files": files}))

        class Commit:
            commit_url = f"https://huggingface.co/{kw['repo_id']}/commit/abc123"

        return Commit()


def test_push_calls_the_hub_api(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    FakeApi.fail = None
    res = runner.invoke(
        app, ["push", str(tiny), "hf://me/colorizer@v1", "--private", "--message", "first"]
    )
    assert res.exit_code == 0, res.output
    assert "https://huggingface.co/me/colorizer/commit/abc123" in res.output
    names = [c[0] for c in FakeApi.calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert FakeApi.calls[0][1] == {"repo_id": "me/colorizer", "private": True, "exist_ok": True}
    assert FakeApi.calls[1][1] == {"repo_id": "me/colorizer", "branch": "v1", "exist_ok": True}
    up = FakeApi.calls[2][1]
    assert (up["repo_id"], up["revision"], up["commit_message"]) == ("me/colorizer", "v1", "first")
    # the upload is byte for byte what --dry-run writes
    dry = tmp_path / "dry"
    assert runner.invoke(app, ["push", str(tiny), "hf://me/colorizer@v1", "--dry-run", str(dry)])
    assert up["files"] == {p.name: p.read_bytes() for p in dry.iterdir()}
    assert not Path(up["folder_path"]).exists()  # the staging folder is cleaned up
    # no revision: no branch; default message names the architecture; public
    runner.invoke(app, ["push", str(tiny), "hf://me/colorizer"])
    assert [c[0] for c in FakeApi.calls] == ["create_repo", "upload_folder"]
    assert FakeApi.calls[0][1]["private"] is False
    assert FakeApi.calls[1][1]["revision"] is None
    assert "eccv16" in FakeApi.calls[1][1]["commit_message"]


def test_push_errors_are_one_line(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    res = runner.invoke(app, ["push", str(tiny), "hf://me/c"])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and "hf auth login" in res.output

    class Response:
        status_code = 403

    class Forbidden(Exception):
        response = Response()

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    for exc, needle in (
        (Forbidden("403 Forbidden: you cannot write to me/c\nmore detail"), "no permission"),
        (ConnectionError("Name or service not known"), "cannot reach the Hub"),
    ):
        FakeApi.fail = exc
        res = runner.invoke(app, ["push", str(tiny), "hf://me/c"])
        assert res.exit_code == 1, res.output
        assert res.output.strip().count("\n") == 0 and needle in res.output, res.output
        assert "hf://me/c" in res.output and "Traceback" not in res.output
    FakeApi.fail = None
