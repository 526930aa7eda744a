"""Colorizer families (``models.registry.Family``): the per-architecture facts of training, checked
over the registry, and a new family added with nothing but its registration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import nn

from colorcli.errors import UsageError
from colorcli.models import (
    Family,
    create_model,
    families,
    family,
    model_kind,
    register_family,
    register_model,
    registry,
    size_multiple,
)
from colorcli.models.registry import OBJECTIVE_KIND
from colorcli.training.config import TrainConfig, make_config, objective_archs
from colorcli.training.loop import model_arguments

# small training options of each family (TrainConfig fields) and the options they describe back
OPTIONS: dict[str, dict[str, Any]] = {
    "eccv16": {"width": 0.125},
    "unet": {"width": 0.125, "depth": 4},
    "effnet-unet": {"width": 0.125, "encoder": "lite0", "head_stride": 2},
}


def test_every_family_has_test_options() -> None:
    assert list(families()) == ["eccv16", "unet", "effnet-unet"]  # registration order
    assert set(OPTIONS) == set(families())


@pytest.mark.parametrize("arch", sorted(OPTIONS))
def test_family_models_arguments_and_description(arch: str) -> None:
    fam = family(arch)
    for objective, name in fam.models.items():
        assert model_kind(name) == OBJECTIVE_KIND[objective]
        assert arch in objective_archs(objective)
        config = make_config("d", "o", objective, arch=arch, crop=256, **OPTIONS[arch])
        kw = model_arguments(config, 12)
        model = create_model(name, **kw)
        assert size_multiple(name, **kw) == model.size_multiple
        recorded = {k: v for k, v in kw.items() if k != "q"}
        assert fam.describe(recorded) == OPTIONS[arch]  # the file's arguments describe the options


def test_objective_archs_default_first() -> None:
    assert objective_archs("classification") == ("eccv16", "effnet-unet")
    assert objective_archs("regression") == ("unet", "eccv16", "effnet-unet")
    assert objective_archs("cgan") == ("unet", "effnet-unet")


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(
        UsageError, match=r"unknown architecture 'vgg' \(eccv16, effnet-unet, unet\)"
    ):
        TrainConfig(data_dir="d", out_dir="o", arch="vgg")
    with pytest.raises(UsageError, match=r"unknown architecture 'vgg' \(choose from: eccv16, eff"):
        family("vgg")
    with pytest.raises(
        UsageError, match=r"--crop 200 must be a multiple of 16 for unet of depth 4"
    ):
        TrainConfig(
            data_dir="d", out_dir="o", objective="regression", arch="unet", depth=4, crop=200
        )


def test_registration_checks() -> None:
    class Wobbly(nn.Module):
        kind = "regression"

        @property
        def size_multiple(self) -> int:
            return 4

    with pytest.raises(TypeError, match="size_multiple function"):
        register_model("wobbly")(Wobbly)
    bad = Family("bad", models={"classification": "unet"}, arguments=dict, describe=dict)
    with pytest.raises(TypeError, match="classification needs a classification model"):
        register_family(bad)
    assert "bad" not in families() and "wobbly" not in registry._REGISTRY


class _Tiny(nn.Module):
    """A 1x1-conv colorizer: the whole of a new family, for the test below."""

    kind = "regression"
    size_multiple = 4

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, channels, 1), nn.ReLU(), nn.Conv2d(channels, 2, 1))

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(lum / 50.0 - 1.0))


def _tiny_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"channels": max(1, round(8 * options["width"]))}


def _tiny_describe(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"width": float(arguments.get("channels", 4)) / 8}


def test_a_new_family_needs_only_its_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    register_model("tiny")(_Tiny)
    register_family(
        Family(
            "tiny",
            models={"regression": "tiny", "cgan": "tiny"},
            arguments=_tiny_arguments,
            describe=_tiny_describe,
            defaults={"batch_size": 2, "crop": 64},
        )
    )
    cfg = make_config("d", "o", "regression", arch="tiny", width=0.5)
    assert (cfg.arch, cfg.batch_size, cfg.crop) == ("tiny", 2, 64)
    assert model_arguments(cfg, 313) == {"channels": 4}
    assert objective_archs("cgan") == ("unet", "effnet-unet", "tiny")
    with pytest.raises(UsageError, match=r"--crop 66 must be a multiple of 4 for tiny$"):
        make_config("d", "o", "regression", arch="tiny", crop=66)
    with pytest.raises(UsageError, match="--objective classification trains eccv16 or effnet-unet"):
        make_config("d", "o", "classification", arch="tiny")
