"""Critic files and scoring: round trip, bad files, logits against the patch map by hand,
gradients w.r.t. ab against finite differences; training against a colorizer that is easy to
spot (gray output), its held-out accuracy recomputed with the saved critic."""

from __future__ import annotations

import copy
import hashlib
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from colorcli.checkpoint import load_model, save_model
from colorcli.color.lab import rgb_to_lab
from colorcli.critic import (
    LoadedCritic,
    critic_logits,
    load_critic,
    save_critic,
)
from colorcli.errors import BadWeights, EmptyDataset, UsageError
from colorcli.events import BadFile as CriticBadFile
from colorcli.imageio import find_images
from colorcli.models import create_model
from colorcli.training.critic import CriticConfig, CriticStep, train_critic
from colorcli.training.dataset import load_crop, split_files

KW: dict[str, Any] = {"width": 4, "n_layers": 2, "norm": "instance"}


def _critic(seed: int = 0, **extra: Any) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("patchgan", **{**KW, **extra}).eval()


def _lab(seed: int, b: int = 2, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lum = torch.rand(b, 1, size, size, generator=g) * 100
    ab = (torch.rand(b, 2, size, size, generator=g) - 0.5) * 120
    return lum, ab


def _save(path: Path, module: nn.Module | None = None, **kwargs: Any) -> nn.Module:
    module = module if module is not None else _critic()
    save_critic(
        path,
        module,
        arch="patchgan",
        arch_kwargs=kwargs.pop("arch_kwargs", KW),
        input_size=32,
        meta={"colorizer": Path("/m/tiny.pt"), "steps": 7, "accuracy": {"balanced": 0.75}},
    )
    return module


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "critic.pt"
    module = _save(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "critic.pt"]  # no temp file left
    raw = torch.load(path, weights_only=True)
    assert (raw["format"], raw["kind"], raw["arch"]) == ("colorcli-critic", "critic", "patchgan")
    assert raw["ab_scale"] == 110.0
    crit = load_critic(path, device="cpu")
    assert isinstance(crit, LoadedCritic)
    assert (crit.arch, crit.arch_kwargs, crit.input_size, crit.path) == ("patchgan", KW, 32, path)
    assert crit.meta["colorizer"] == "/m/tiny.pt" and crit.meta["steps"] == 7
    assert crit.meta["accuracy"] == {"balanced": 0.75} and crit.meta["format_version"] == 1
    assert not crit.module.training and crit.device == torch.device("cpu")
    for k, v in module.state_dict().items():
        assert torch.equal(crit.module.state_dict()[k], v)
    lum, ab = _lab(1)
    assert torch.equal(crit.logits(lum, ab), critic_logits(module, lum, ab, 110.0))


def test_logits_are_mean_of_patch_map_by_hand(tmp_path: Path) -> None:
    module = _save(tmp_path / "c.pt")
    crit = load_critic(tmp_path / "c.pt", device="cpu")
    lum, ab = _lab(2, b=3, size=32)
    # the PatchGAN body applied to (L normalised to [-1, 1], ab / 110), averaged per image
    x = torch.cat([(lum - 50.0) / 50.0, ab / 110.0], dim=1)
    patch = module.net(x)  # type: ignore[operator]
    assert patch.shape[0] == 3 and patch.shape[1] == 1 and patch.shape[-1] > 1
    expect = torch.stack([patch[i].sum() / patch[i].numel() for i in range(3)])
    got = crit.logits(lum, ab)
    assert got.shape == (3,)
    torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6)
    real = crit.realism(lum, ab)
    assert not real.requires_grad
    torch.testing.assert_close(real, 1 / (1 + torch.exp(-expect)), rtol=1e-5, atol=1e-6)


def test_global_pool_variant(tmp_path: Path) -> None:
    kw = {**KW, "global_pool": True}
    module = _critic(global_pool=True)
    _save(tmp_path / "g.pt", module, arch_kwargs=kw)
    crit = load_critic(tmp_path / "g.pt", device="cpu")
    lum, ab = _lab(3)
    x = torch.cat([(lum - 50.0) / 50.0, ab / 110.0], dim=1)
    expect = module.net(x).mean(dim=(1, 2, 3))  # type: ignore[operator]
    torch.testing.assert_close(crit.logits(lum, ab), expect, rtol=1e-5, atol=1e-6)


def test_logits_differentiable_in_ab(tmp_path: Path) -> None:
    module = _save(tmp_path / "c.pt")
    crit = load_critic(tmp_path / "c.pt", device="cpu")
    lum, ab = _lab(4, b=2, size=16)
    ab = ab.requires_grad_(True)
    crit.logits(lum, ab).sum().backward()
    assert ab.grad is not None
    grad = ab.grad
    assert grad.abs().sum() > 0

    # float64 central differences of the pure function on a few entries
    m64 = copy.deepcopy(module).double()
    lum64, ab64 = lum.double(), ab.detach().double()
    ab64.requires_grad_(True)
    critic_logits(m64, lum64, ab64, 110.0).sum().backward()
    assert ab64.grad is not None
    torch.testing.assert_close(grad.double(), ab64.grad, rtol=1e-3, atol=1e-7)
    eps = 1e-4
    for idx in [(0, 0, 3, 5), (1, 1, 8, 8), (0, 1, 15, 0), (1, 0, 0, 12)]:
        plus, minus = ab64.detach().clone(), ab64.detach().clone()
        plus[idx] += eps
        minus[idx] -= eps
        with torch.no_grad():
            fd = (
                critic_logits(m64, lum64, plus, 110.0).sum()
                - critic_logits(m64, lum64, minus, 110.0).sum()
            ) / (2 * eps)
        assert abs(float(fd) - float(ab64.grad[idx])) <= 1e-6 + 1e-4 * abs(float(fd))
    assert any(float(ab64.grad[i]) != 0 for i in [(0, 0, 3, 5), (1, 1, 8, 8)])


def test_bad_shapes(tmp_path: Path) -> None:
    _save(tmp_path / "c.pt")
    crit = load_critic(tmp_path / "c.pt", device="cpu")
    lum, ab = _lab(5)
    with pytest.raises(ValueError, match="ab must have shape"):
        crit.logits(lum, ab[:, :1])
    with pytest.raises(ValueError, match="L must have shape"):
        crit.logits(lum[0], ab)


def test_missing_folder_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(BadWeights, match="no such file") as exc:
        load_critic(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in _one_line(exc)
    with pytest.raises(BadWeights, match="folder"):
        load_critic(tmp_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(BadWeights, match=r"bad\.pt") as exc:
        load_critic(bad)
    _one_line(exc)


def test_colorizer_file_is_not_a_critic(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(BadWeights, match="not a critic") as exc:
        load_critic(tiny_model)
    assert str(tiny_model) in _one_line(exc)
    # and a critic file is not a colorizer
    _save(tmp_path / "c.pt")
    with pytest.raises(BadWeights, match=r"c\.pt"):
        load_model(tmp_path / "c.pt", device="cpu")


def test_foreign_and_wrong_files(tmp_path: Path) -> None:
    good = torch.load(_save_path(tmp_path), weights_only=True)

    def write(name: str, obj: Any) -> Path:
        p = tmp_path / name
        torch.save(obj, p)
        return p

    with pytest.raises(BadWeights, match="not a colorcli critic file"):
        load_critic(write("plain.pt", {"w": torch.zeros(2)}))
    with pytest.raises(BadWeights, match="newer colorcli"):
        load_critic(write("new.pt", {**good, "version": 99}))
    with pytest.raises(BadWeights, match="unknown critic architecture"):
        load_critic(write("arch.pt", {**good, "arch": "ebgan-ae"}))
    with pytest.raises(BadWeights, match="lacks its 'state_dict'"):
        load_critic(write("nostate.pt", {k: v for k, v in good.items() if k != "state_dict"}))
    with pytest.raises(BadWeights, match="shape mismatch"):
        load_critic(write("shape.pt", {**good, "arch_kwargs": {**KW, "width": 8}}))
    with pytest.raises(BadWeights, match="cannot build"):
        load_critic(write("kw.pt", {**good, "arch_kwargs": {**KW, "norm": "weird"}}))
    with pytest.raises(BadWeights, match="ab_scale"):
        load_critic(write("scale.pt", {**good, "ab_scale": 0.0}))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        torch.save({**good, "meta": {"x": _Evil()}}, fh, pickle_module=pickle)
    with pytest.raises(BadWeights, match="refused"):
        load_critic(evil)


class _Evil:
    """Not allowed under weights_only."""


def _save_path(tmp_path: Path) -> Path:
    path = tmp_path / "good.pt"
    _save(path)
    return path


def test_save_rejects_other_arch_and_unplain_meta(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="critic arch"):
        save_critic(
            tmp_path / "x.pt", _critic(), arch="unet", arch_kwargs=KW, input_size=32, meta={}
        )
    with pytest.raises(TypeError, match="meta"):
        save_critic(
            tmp_path / "y.pt",
            _critic(),
            arch="patchgan",
            arch_kwargs=KW,
            input_size=32,
            meta={"obj": object()},
        )
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- training


def _photo(path: Path, seed: int, shape: tuple[int, int] = (40, 48)) -> None:
    """A smooth random colour image (saturated: never counted as gray)."""
    g = np.random.default_rng(seed)
    img = cv2.resize(g.random((3, 4, 3)), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("photos")
    for i in range(12):
        _photo(d / f"img{i:02d}.png", seed=i)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


@pytest.fixture(scope="module")
def gray_colorizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eccv16-regression file whose head is zeroed: tanh(0) = 0, so its output is gray."""
    torch.manual_seed(0)
    model = create_model("eccv16-regression", width=0.0625)
    head: Any = model.head
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    path = tmp_path_factory.mktemp("colorizer") / "gray.pt"
    save_model(
        path,
        model,
        arch="eccv16-regression",
        arch_kwargs={"width": 0.0625},
        bins=None,
        input_size=32,
    )
    return path


def _cfg(photos: Path, colorizer: Path, out: Path, **kw: Any) -> CriticConfig:
    base: dict[str, Any] = dict(
        data_dirs=(str(photos),),
        model=str(colorizer),
        out=str(out),
        steps=30,
        batch_size=4,
        crop=32,
        lr=1e-3,
        width=8,
        n_layers=2,
        val_split=0.34,
        device="cpu",
    )
    base.update(kw)
    return CriticConfig(**base)


def test_train_critic_spots_a_gray_colorizer(
    photos: Path, gray_colorizer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "critic.pt"
    events: list[Any] = []
    result = train_critic(_cfg(photos, gray_colorizer, out), on_event=events.append)
    assert result.path == out and out.is_file()
    assert [p for p, _ in result.bad_files] == [str(photos / "broken.jpg")]
    assert sum(isinstance(e, CriticBadFile) for e in events) == 1
    steps = [e.step for e in events if isinstance(e, CriticStep)]
    assert steps == list(range(1, 31))
    assert result.accuracy["on"] == "held-out"
    assert result.accuracy["balanced"] >= 0.9

    crit = load_critic(out, device="cpu")
    meta = crit.meta
    assert meta["accuracy"] == result.accuracy
    assert meta["steps"] == 30 and meta["data_dirs"] == [str(photos)]
    assert meta["colorizer"]["path"] == str(gray_colorizer)
    assert meta["colorizer"]["sha256"] == hashlib.sha256(gray_colorizer.read_bytes()).hexdigest()
    assert meta["timing"]["train_seconds"] > 0
    assert crit.input_size == 32 and crit.arch_kwargs["norm"] == "instance"

    # independent recomputation of the held-out accuracy with the saved critic
    _, val = split_files(find_images([photos]), 0.34, 0)
    good = [p for p in val if p.name != "broken.jpg"]
    assert result.accuracy["n"] == len(good) >= 3
    rgb = np.stack([load_crop(p, 32, None) for p in good]).astype(np.float32) / 255
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2))
    lum, ab = lab[:, :1], lab[:, 1:]
    real = crit.realism(lum, ab)
    fake = crit.realism(lum, torch.zeros_like(ab))  # the gray colorizer's output
    assert result.accuracy["real"] == pytest.approx(float((real > 0.5).double().mean()))
    assert result.accuracy["colorized"] == pytest.approx(float((fake <= 0.5).double().mean()))


def test_train_critic_is_deterministic_and_global_pool(
    photos: Path, gray_colorizer: Path, tmp_path: Path
) -> None:
    cfg = _cfg(photos, gray_colorizer, tmp_path / "a.pt", steps=3, global_pool=True)
    train_critic(cfg)
    train_critic(replace(cfg, out=str(tmp_path / "b.pt")))
    a, b = load_critic(tmp_path / "a.pt"), load_critic(tmp_path / "b.pt")
    assert a.arch_kwargs["global_pool"] is True
    for k, v in a.module.state_dict().items():
        assert torch.equal(v, b.module.state_dict()[k]), k


def test_train_critic_refuses_overwrite_and_bad_settings(
    photos: Path, gray_colorizer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        train_critic(_cfg(photos, gray_colorizer, out))
    assert out.read_bytes() == b"keep me"
    with pytest.raises(UsageError, match="too small"):
        train_critic(_cfg(photos, gray_colorizer, tmp_path / "x.pt", crop=16, n_layers=3))
    with pytest.raises(UsageError, match="no such folder"):
        train_critic(_cfg(tmp_path / "nope", gray_colorizer, tmp_path / "x.pt"))
    with pytest.raises(UsageError, match="is a folder"):
        train_critic(_cfg(photos, gray_colorizer, tmp_path))
    with pytest.raises(BadWeights, match="no such file"):
        train_critic(_cfg(photos, tmp_path / "missing.pt", tmp_path / "x.pt"))
    assert not (tmp_path / "x.pt").exists()
    # overwrite replaces the file
    train_critic(_cfg(photos, gray_colorizer, out, steps=2, overwrite=True))
    assert load_critic(out).meta["steps"] == 2


def test_train_critic_empty_and_unreadable_folders(gray_colorizer: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyDataset, match="no image files"):
        train_critic(_cfg(empty, gray_colorizer, tmp_path / "x.pt"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(3):
        (broken / f"b{i}.png").write_bytes(b"nope")
    with pytest.raises(EmptyDataset, match="none of the training photos"):
        train_critic(_cfg(broken, gray_colorizer, tmp_path / "x.pt"))
    assert not (tmp_path / "x.pt").exists()


def test_train_critic_against_a_classification_colorizer(
    photos: Path, tiny_model: Path, tmp_path: Path
) -> None:
    events: list[Any] = []
    out = tmp_path / "k.pt"
    result = train_critic(_cfg(photos, tiny_model, out, steps=2), on_event=events.append)
    steps = [e for e in events if isinstance(e, CriticStep)]
    assert all(np.isfinite(e.loss) and 0 <= e.accuracy <= 1 for e in steps)
    meta = load_critic(out).meta
    assert meta["colorizer"]["kind"] == "classification" and meta["colorizer"]["arch"] == "eccv16"
    assert result.accuracy["n"] == meta["accuracy"]["n"] > 0
