"""Model files: round trips, safe loading, errors, Hugging Face cache, the released eccv16."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from colorcli.checkpoint import (
    DEFAULT_WEIGHTS_NAME,
    LEGACY_WEIGHTS_NAME,
    LoadedModel,
    copy_model,
    default_model_path,
    load_model,
    parse_hf_spec,
    read_model_file,
    repo_root,
    save_model,
)
from colorcli.color.bins import reference_bins
from colorcli.color.encode import decode
from colorcli.color.lab import AB_SCALE
from colorcli.errors import BadWeights, MissingFile, UsageError
from colorcli.models import create_model

Q = 12
BINS = np.stack(np.meshgrid(np.arange(3) * 10.0 - 10, np.arange(4) * 10.0 - 10), -1).reshape(-1, 2)


def _tiny_eccv16(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = create_model("eccv16", q=Q, width=0.125)
    # non-trivial BatchNorm statistics, so that a round trip that lost them would show
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def _save_eccv16(path: Path, half: bool = False, **extra: Any) -> nn.Module:
    model = _tiny_eccv16()
    save_model(
        path,
        model,
        arch="eccv16",
        arch_kwargs={"q": Q, "width": 0.125},
        bins=BINS,
        decode={"method": "annealed", "temperature": 0.5},
        input_size=64,
        train_config={"lr": 3e-5, "data": Path("/photos"), "milestones": (10, 20)},
        metrics={"auc": 91.5},
        step=123,
        half=half,
        **extra,
    )
    return model


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_round_trip_classification(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    model = _save_eccv16(path)
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, LoadedModel)
    assert (loaded.arch, loaded.kind, loaded.input_size) == ("eccv16", "classification", 64)
    assert (loaded.decode_method, loaded.temperature) == ("annealed", 0.5)
    assert loaded.meta["step"] == 123 and loaded.meta["metrics"] == {"auc": 91.5}
    assert loaded.meta["train_config"]["data"] == "/photos"
    assert not loaded.model.training
    assert loaded.bins is not None and loaded.bins.dtype == torch.float32
    np.testing.assert_array_equal(loaded.bins.numpy(), BINS)
    lum = torch.rand(2, 1, 32, 40) * 100
    with torch.no_grad():
        ref = model(lum)
    torch.testing.assert_close(loaded.model(lum), ref, rtol=0, atol=0)
    torch.testing.assert_close(loaded.logits(lum), ref, rtol=0, atol=0)
    # predict_ab = decode with the file's settings, then x4 bilinear upsampling
    expected = F.interpolate(
        decode(ref, BINS, "annealed", 0.5).float(), scale_factor=4, mode="bilinear"
    )
    torch.testing.assert_close(loaded.predict_ab(lum), expected)
    mode = F.interpolate(decode(ref, BINS, "mode").float(), scale_factor=4, mode="bilinear")
    torch.testing.assert_close(loaded.predict_ab(lum, method="mode"), mode)
    # a safetensors file: its tensors are the state dict, its metadata the description (JSON)
    assert path.read_bytes()[8:9] == b"{"
    from safetensors import safe_open
    from safetensors.torch import load_file

    assert load_file(path).keys() == model.state_dict().keys()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "colorcli-model" and json.loads(meta["colorcli"])["step"] == 123
    raw = read_model_file(path)
    assert raw["format"] == "colorcli-model" and raw["version"] == 1
    assert raw["arch_kwargs"]["l_center"] == 50.0 and raw["arch_kwargs"]["l_range"] == 100.0
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


def test_half_storage(tmp_path: Path) -> None:
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    model = _save_eccv16(full)
    _save_eccv16(half, half=True)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    raw = read_model_file(half)
    assert raw["state_dict"]["head.weight"].dtype == torch.float16
    loaded = load_model(half, device="cpu")
    assert loaded.model.head.weight.dtype == torch.float32
    lum = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        ref = model(lum)
    torch.testing.assert_close(loaded.model(lum), ref, rtol=0.05, atol=0.05)


def test_copy_model_halves_and_overrides_only_what_it_is_told(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.pt", tmp_path / "out" / "dst.pt"
    model = _save_eccv16(src)
    copy_model(src, dst, half=True, decode={"temperature": 0.7})
    raw, new = read_model_file(src), read_model_file(dst)
    assert new["half"] is True and new["state_dict"]["head.weight"].dtype == torch.float16
    assert new["decode"] == {"method": "annealed", "temperature": 0.7}
    for key in ("arch", "arch_kwargs", "input_size", "train_config", "metrics", "step"):
        assert new[key] == raw[key], key
    torch.testing.assert_close(new["bins"], raw["bins"])
    # the weights are the source's, rounded to float16 (checked element by element)
    for name, t in raw["state_dict"].items():
        if t.is_floating_point():
            torch.testing.assert_close(new["state_dict"][name], t.half(), rtol=0, atol=0)
    lum = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        ref = model(lum)
    torch.testing.assert_close(load_model(dst, device="cpu").model(lum), ref, rtol=0.05, atol=0.05)
    # metrics replaced when given; the source file is untouched
    copy_model(src, dst, half=False, metrics={"chosen": 1})
    again = read_model_file(dst)
    assert again["metrics"] == {"chosen": 1} and again["decode"]["temperature"] == 0.5
    assert again["state_dict"]["head.weight"].dtype == torch.float32
    assert read_model_file(src)["metrics"] == {"auc": 91.5}
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_round_trip_regression_and_odd_sizes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    unet = create_model("unet", depth=4, width=8).eval()
    save_model(
        tmp_path / "u.pt", unet, arch="unet", arch_kwargs={"depth": 4, "width": 8}, bins=None
    )
    loaded = load_model(tmp_path / "u.pt", device="cpu")
    assert loaded.kind == "regression" and loaded.bins is None and loaded.size_multiple == 16
    lum = torch.rand(2, 1, 32, 48) * 100
    with torch.no_grad():
        expected = unet(lum) * AB_SCALE
    torch.testing.assert_close(loaded.predict_ab(lum), expected)
    odd = torch.rand(1, 1, 37, 53) * 100
    ab = loaded.predict_ab(odd)
    assert ab.shape == (1, 2, 37, 53) and ab.abs().max() <= AB_SCALE
    # padding is on the bottom/right with edge replication: the top-left result is the network's
    padded = F.pad(odd, (0, 11, 0, 11), mode="replicate")
    with torch.no_grad():
        torch.testing.assert_close(ab, unet(padded)[..., :37, :53] * AB_SCALE)
    with pytest.raises(UsageError):
        loaded.logits(lum)


def test_classification_odd_sizes(tmp_path: Path) -> None:
    _save_eccv16(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", device="cpu")
    lum = torch.rand(2, 1, 37, 50) * 100
    assert loaded.predict_ab(lum).shape == (2, 2, 37, 50)
    assert loaded.logits(lum).shape == (2, Q, 10, 13)


def test_regression_head_on_eccv16_upsamples(tmp_path: Path) -> None:
    model = create_model("eccv16-regression", width=0.125).eval()
    save_model(
        tmp_path / "r.pt", model, arch="eccv16-regression", arch_kwargs={"width": 0.125}, bins=None
    )
    ab = load_model(tmp_path / "r.pt", device="cpu").predict_ab(torch.rand(1, 1, 30, 41) * 100)
    assert ab.shape == (1, 2, 30, 41)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pt"
    torch.save({"format": "colorcli-model", "x": _Exploit(marker)}, zipped)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(marker), protocol=2))
    for path in (zipped, raw):
        with pytest.raises(BadWeights) as info:
            load_model(path, device="cpu")
        assert str(path) in _one_line(info)
    assert not marker.exists()


def test_error_messages(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="no such file") as info:
        load_model(tmp_path / "nope.pt")
    assert info.value.exit_code == 2  # a usage error, as the README promises
    _one_line(info)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(BadWeights, match="not a colorcli model file"):
        load_model(other)

    good = tmp_path / "good.pt"
    _save_eccv16(good)
    payload = read_model_file(good)

    def variant(name: str, **changes: Any) -> Path:
        p = tmp_path / name
        torch.save({**payload, **changes}, p)
        return p

    with pytest.raises(BadWeights, match="unknown architecture 'vgg'") as info:
        load_model(variant("arch.pt", arch="vgg"))
    assert "eccv16" in _one_line(info)
    with pytest.raises(BadWeights, match="shape mismatch") as info:
        load_model(variant("shape.pt", arch_kwargs={**payload["arch_kwargs"], "q": Q + 1}))
    assert "head.weight" in _one_line(info)
    with pytest.raises(BadWeights, match="newer colorcli"):
        load_model(variant("new.pt", version=2))
    with pytest.raises(BadWeights, match="bins"):
        load_model(variant("bins.pt", bins=torch.zeros(Q + 1, 2)))
    with pytest.raises(BadWeights, match="cannot build"):
        load_model(variant("kw.pt", arch_kwargs={"q": Q, "depth": 3}))


def _legacy_payload(path: Path) -> dict[str, Any]:
    """What ``save_model`` wrote before safetensors: ``torch.save`` of the description with the
    state dict and bins as tensors."""
    raw = read_model_file(path)
    return {**raw, "state_dict": dict(raw["state_dict"]), "bins": raw["bins"].clone()}


def test_legacy_pt_files_load_the_same(tmp_path: Path) -> None:
    new = tmp_path / "model.pt"
    model = _save_eccv16(new)
    old = tmp_path / "old.pt"
    torch.save(_legacy_payload(new), old)
    assert old.read_bytes()[:2] == b"PK"  # a real PyTorch zip file
    lum = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        ref = model(lum)
    for path in (new, old):
        loaded = load_model(path, device="cpu")
        assert (loaded.arch, loaded.temperature, loaded.meta["step"]) == ("eccv16", 0.5, 123)
        torch.testing.assert_close(loaded.model(lum), ref, rtol=0, atol=0)
    data = old.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):  # a truncated .pt is one line too
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(BadWeights, match="truncated or corrupt PyTorch file") as info:
            load_model(tmp_path / "cut.pt")
        _one_line(info)
    # and copy_model converts an old file into a safetensors one
    copy_model(old, tmp_path / "new.safetensors", half=False)
    assert (tmp_path / "new.safetensors").read_bytes()[8:9] == b"{"
    torch.testing.assert_close(
        load_model(tmp_path / "new.safetensors", "cpu").model(lum), ref, rtol=0, atol=0
    )


@pytest.mark.parametrize("cut", [4, 40, 0.5, -1])
def test_truncated_safetensors_is_one_line(tmp_path: Path, cut: float) -> None:
    good = tmp_path / "good.pt"
    _save_eccv16(good)
    data = good.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: int(len(data) * cut)] if isinstance(cut, float) else data[:cut])
    with pytest.raises(BadWeights) as info:
        load_model(bad, device="cpu")
    msg = _one_line(info)
    assert str(bad) in msg and ("truncated" in msg or "not a model file" in msg), msg


def test_corrupt_safetensors_header_and_metadata(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    _save_eccv16(good)
    data = bytearray(good.read_bytes())
    n = int.from_bytes(data[:8], "little")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(bytes(data[:8]) + b"{" + b"x" * (n - 1) + bytes(data[8 + n :]))
    with pytest.raises(BadWeights, match="corrupt safetensors header") as info:
        load_model(broken)
    _one_line(info)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "meta.pt"), metadata={"colorcli": "{oops"})
    with pytest.raises(BadWeights, match="corrupt colorcli metadata"):
        load_model(tmp_path / "meta.pt")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(BadWeights, match="not a colorcli model file"):
        load_model(tmp_path / "bare.safetensors")


def test_wrong_files_get_a_plain_reason(tmp_path: Path) -> None:
    """Issue 13: no stray numbers, no 'could run code' for garbage, no torch internals."""
    cases: dict[str, tuple[bytes | None, str]] = {
        "notes.pt": (b"hello, I am not a model\n", "not a model file: a text file"),
        "random.pt": (
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "not a model file: unrecognised content",
        ),
        "empty.pt": (b"", "not a model file: an empty file"),
    }
    for name, (data, expected) in cases.items():
        p = tmp_path / name
        p.write_bytes(data or b"")
        with pytest.raises(BadWeights, match=expected) as info:
            load_model(p)
        msg = _one_line(info)
        assert "could run code" not in msg and not any(c.isdigit() for c in msg.split(":")[-1])
    # pickle-looking garbage is called corrupt, not dangerous
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x02" + bytes(range(256)) * 4)
    with pytest.raises(BadWeights, match="corrupt PyTorch file") as info:
        load_model(garbage)
    assert "could run code" not in _one_line(info)
    np.savez(tmp_path / "arrays.npz", x=np.zeros(3))
    with pytest.raises(
        BadWeights, match=r"zip archive \(e\.g\. NumPy \.npz\) holding x\.npy"
    ) as info:
        load_model(tmp_path / "arrays.npz")
    assert "inline_container" not in _one_line(info) and "enforce" not in _one_line(info)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "colorcli-resume", "version": 1, "step": 3}, run / "resume.pt")
    with pytest.raises(BadWeights, match="resume file") as info:
        load_model(run / "resume.pt")
    assert f"use {run / 'model.pt'}" in _one_line(info)
    torch.save({"format": "colorcli-critic", "version": 1}, tmp_path / "critic.pt")
    with pytest.raises(BadWeights, match="a critic file, not a colorizer"):
        load_model(tmp_path / "critic.pt")
    _save_eccv16(run / "model.pt")
    with pytest.raises(BadWeights, match="is a folder") as info:
        load_model(run)
    assert str(run / "model.pt") in _one_line(info)


def test_cli_model_file_errors(tmp_path: Path) -> None:
    """The CLI renders each as one line; a missing --model path is a usage error (exit 2)."""
    from typer.testing import CliRunner

    from colorcli.cli import app

    photo = repo_root() / "examples" / "chelsea_gray.jpg"
    text = tmp_path / "notes.pt"
    text.write_text("not a model\n")
    runner = CliRunner()
    for model, code, expected in (
        (tmp_path / "missing.pt", 2, "no such file"),
        (text, 1, "a text file"),
    ):
        res = runner.invoke(
            app, ["colorize", str(photo), "-o", str(tmp_path / "out"), "--model", str(model)]
        )
        assert res.exit_code == code, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert any(expected in ln and str(model) in ln for ln in lines), res.output
        assert "Traceback" not in res.output


def test_save_refuses_non_plain_config(tmp_path: Path) -> None:
    model = _tiny_eccv16()
    with pytest.raises(TypeError, match=r"train_config\.fn"):
        save_model(
            tmp_path / "x.pt",
            model,
            arch="eccv16",
            arch_kwargs={"q": Q, "width": 0.125},
            bins=BINS,
            train_config={"fn": print},
        )
    with pytest.raises(ValueError, match="bins"):
        save_model(
            tmp_path / "x.pt",
            model,
            arch="eccv16",
            arch_kwargs={"q": Q, "width": 0.125},
            bins=BINS[:5],
        )
    assert not (tmp_path / "x.pt").exists()


def test_default_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLORCLI_WEIGHTS", raising=False)
    assert default_model_path().parent == repo_root() / "weights"
    assert default_model_path().name in (DEFAULT_WEIGHTS_NAME, LEGACY_WEIGHTS_NAME)
    assert (repo_root() / "colorcli" / "checkpoint" / "__init__.py").is_file()
    monkeypatch.setenv("COLORCLI_WEIGHTS", str(tmp_path / "missing.pt"))
    for spec in (None, "default"):
        with pytest.raises(BadWeights, match="no default model is shipped") as info:
            load_model(spec)
        assert "--model" in _one_line(info)
    _save_eccv16(tmp_path / "missing.pt")
    assert load_model(None, device="cpu").arch == "eccv16"
    copy_model("default", tmp_path / "copy.safetensors")  # specs, not only paths
    assert load_model(tmp_path / "copy.safetensors", "cpu").meta["step"] == 123


def test_default_lookup_prefers_safetensors_and_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colorcli import weights

    monkeypatch.delenv("COLORCLI_WEIGHTS", raising=False)
    packaged, checkout = tmp_path / "pkg", tmp_path / "weights"
    packaged.mkdir()
    checkout.mkdir()
    monkeypatch.setattr(weights, "weights_dirs", lambda: [packaged, checkout])
    assert default_model_path() == checkout / DEFAULT_WEIGHTS_NAME  # none yet: where it goes
    (checkout / LEGACY_WEIGHTS_NAME).write_bytes(b"x")
    assert default_model_path() == checkout / LEGACY_WEIGHTS_NAME  # an old .pt still found
    (checkout / DEFAULT_WEIGHTS_NAME).write_bytes(b"x")
    assert default_model_path() == checkout / DEFAULT_WEIGHTS_NAME  # safetensors first
    (packaged / LEGACY_WEIGHTS_NAME).write_bytes(b"x")
    assert default_model_path() == packaged / LEGACY_WEIGHTS_NAME  # the installed copy first
    monkeypatch.setenv("COLORCLI_WEIGHTS", str(tmp_path / "mine.pt"))
    assert default_model_path() == tmp_path / "mine.pt"


def _fill_hub_cache(cache: Path, repo_id: str, filename: str, source: Path) -> str:
    """The huggingface_hub cache layout: models--owner--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    target = root / "snapshots" / commit / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    return commit


def test_hf_spec_offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    src = tmp_path / "src.pt"
    model = _save_eccv16(src)
    cache = tmp_path / "hub"
    commit = _fill_hub_cache(cache, "someone/colorizers", "v1/model.pt", src)
    lum = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        ref = model(lum)
    for spec in (
        "hf://someone/colorizers/v1/model.pt",
        f"hf://someone/colorizers@{commit}/v1/model.pt",
    ):
        loaded = load_model(spec, device="cpu", cache_dir=cache)
        torch.testing.assert_close(loaded.model(lum), ref, rtol=0, atol=0)
        assert loaded.meta["source"] == spec
    with pytest.raises(BadWeights, match="cannot download") as info:
        load_model("hf://someone/colorizers/v2/model.pt", cache_dir=cache)
    assert "hf://someone/colorizers/v2/model.pt" in _one_line(info)


def test_parse_hf_spec() -> None:
    assert parse_hf_spec("hf://a/b/c.pt") == ("a/b", "c.pt", None)
    assert parse_hf_spec("hf://a/b@dev/x/c.pt") == ("a/b", "x/c.pt", "dev")
    with pytest.raises(UsageError):
        parse_hf_spec("hf://a/c.pt")


# The released eccv16 layout, written out from the authors' published layer list:
# block -> list of (sequential index, kind, c_in, c_out, kernel, stride, dilation).
def _released_layers() -> dict[int, list[tuple[int, str, int, int, int, int, int]]]:
    spec = [
        (1, 64, 2, 1),
        (128, 128, 2, 1),
        (256, 256, 3, 1),
        (512, 512, 3, 1),
        (512, 512, 3, 2),
        (512, 512, 3, 2),
        (512, 512, 3, 1),
    ]
    layers: dict[int, list[tuple[int, str, int, int, int, int, int]]] = {}
    c_in = 1
    for block, (_, c, n, dil) in enumerate(spec, start=1):
        entries = []
        for i in range(n):
            stride = 2 if (block <= 3 and i == n - 1) else 1
            entries.append((2 * i, "conv", c_in if i == 0 else c, c, 3, stride, dil))
        entries.append((2 * n, "bn", c, c, 0, 0, 0))
        layers[block] = entries
        c_in = c
    layers[8] = [
        (0, "convT", 512, 256, 4, 2, 1),
        (2, "conv", 256, 256, 3, 1, 1),
        (4, "conv", 256, 256, 3, 1, 1),
        (6, "conv", 256, 313, 1, 1, 1),
    ]
    return layers


def _released_state_dict(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for block, entries in _released_layers().items():
        for idx, kind, c_in, c_out, k, _, _ in entries:
            key = f"model{block}.{idx}"
            if kind == "bn":
                sd[f"{key}.weight"] = torch.rand(c_out, generator=g) + 0.5
                sd[f"{key}.bias"] = torch.randn(c_out, generator=g) * 0.1
                sd[f"{key}.running_mean"] = torch.randn(c_out, generator=g) * 0.1
                sd[f"{key}.running_var"] = torch.rand(c_out, generator=g) + 0.5
                sd[f"{key}.num_batches_tracked"] = torch.tensor(1000)
            else:
                shape = (c_in, c_out, k, k) if kind == "convT" else (c_out, c_in, k, k)
                std = (2.0 / (c_in * k * k)) ** 0.5
                sd[f"{key}.weight"] = torch.randn(shape, generator=g) * std
                sd[f"{key}.bias"] = torch.randn(c_out, generator=g) * 0.01
    sd["model_out.weight"] = torch.randn(2, 313, 1, 1, generator=g)
    return sd


def _functional_released_forward(sd: dict[str, torch.Tensor], lum: torch.Tensor) -> torch.Tensor:
    x = (lum - 50.0) / 100.0
    for block, entries in _released_layers().items():
        for idx, kind, _, _, _, stride, dil in entries:
            w, b = sd[f"model{block}.{idx}.weight"], sd[f"model{block}.{idx}.bias"]
            if kind == "bn":
                x = F.batch_norm(
                    x,
                    sd[f"model{block}.{idx}.running_mean"],
                    sd[f"model{block}.{idx}.running_var"],
                    w,
                    b,
                    False,
                    0.0,
                    1e-5,
                )
            elif kind == "convT":
                x = F.relu(F.conv_transpose2d(x, w, b, stride=2, padding=1))
            elif block == 8 and idx == 6:
                x = F.conv2d(x, w, b)  # the logits: no ReLU
            else:
                x = F.relu(F.conv2d(x, w, b, stride=stride, padding=dil, dilation=dil))
    return x


def test_released_eccv16_state_dict(tmp_path: Path) -> None:
    sd = _released_state_dict(seed=5)
    path = tmp_path / "colorization_release_v2.pth"
    torch.save(sd, path)
    loaded = load_model(path, device="cpu")
    assert loaded.arch == "eccv16" and loaded.kind == "classification"
    assert loaded.bins is not None
    np.testing.assert_allclose(loaded.bins.numpy(), reference_bins())
    lum = torch.rand(2, 1, 24, 32) * 100
    expected = _functional_released_forward(sd, lum)
    got = loaded.logits(lum)
    assert got.shape == (2, 313, 6, 8)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    # older files without BatchNorm counters load too; a foreign key is refused
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    old_head = load_model(tmp_path / "old.pth", device="cpu").model.head.weight
    torch.testing.assert_close(old_head, sd["model8.6.weight"], rtol=0, atol=0)
    torch.save({**sd, "model9.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(BadWeights, match="model9"):
        load_model(tmp_path / "bad.pth")
    del sd
    os.remove(path)


def test_hf_spec_without_network_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no network huggingface_hub retried for 25 s; now a refused connection (a closed
    local port stands in for the Hub: nothing leaves the machine) fails at once with a hint,
    and a cached file is used as it is."""
    import time

    import huggingface_hub
    import huggingface_hub.constants as hf_constants

    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")

    def no_download(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("hf_hub_download must not be tried without a network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    cache = tmp_path / "hub"
    start = time.perf_counter()
    with pytest.raises(BadWeights) as info:
        load_model("hf://someone/colorizers/v1/model.pt", cache_dir=cache)
    assert time.perf_counter() - start < 10
    line = _one_line(info)
    assert "hf://someone/colorizers/v1/model.pt" in line and "HF_HUB_OFFLINE=1" in line
    assert "cannot reach" in line and "not in the Hugging Face cache" in line
    src = tmp_path / "src.pt"
    _save_eccv16(src)
    _fill_hub_cache(cache, "someone/colorizers", "v1/model.pt", src)
    loaded = load_model("hf://someone/colorizers/v1/model.pt", device="cpu", cache_dir=cache)
    assert loaded.meta["source"] == "hf://someone/colorizers/v1/model.pt"
