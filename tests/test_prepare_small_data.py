"""scripts/prepare_small_data.py: downsized copies keep names, layout, file order and the split."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from colorcli.imageio import find_images
from colorcli.training.dataset import split_files

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "prepare_small_data.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prepare_small_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _photo(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    rng = np.random.default_rng(len(str(path)))
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def test_prepare_small_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = tmp_path / "data", tmp_path / "small"
    _photo(data / "imagenet-sample" / "n1_fish.JPEG", (500, 375))
    _photo(data / "imagenet-sample" / "n2_gray.JPEG", (300, 400), "L")
    _photo(data / "bsds500" / "train" / "1.jpg", (481, 321))
    _photo(data / "bsds500" / "train" / "2.jpg", (120, 90))  # smaller than --side: not enlarged
    _photo(data / "bsds500" / "val" / "3.jpg", (321, 481))
    (data / "bsds500" / "val" / "4.jpg").write_bytes(b"not a jpeg")
    _photo(data / "bsds500" / "test" / "5.jpg", (481, 321))  # held out: never copied
    argv = ["prepare_small_data.py", "--data", str(data), "--out", str(out), "--side", "256"]
    monkeypatch.setattr(sys, "argv", argv)
    assert _script().main() == 0
    captured = capsys.readouterr()
    assert "4.jpg: skipped" in captured.err and "wrote 5 photos" in captured.out

    sizes = {p.relative_to(out).as_posix(): Image.open(p).size for p in out.rglob("*.*")}
    assert sizes == {
        "imagenet-sample/n1_fish.JPEG": (341, 256),
        "imagenet-sample/n2_gray.JPEG": (256, 341),
        "bsds500/train/1.jpg": (384, 256),
        "bsds500/train/2.jpg": (120, 90),
        "bsds500/val/3.jpg": (256, 384),
    }
    assert Image.open(out / "imagenet-sample" / "n2_gray.JPEG").mode == "L"
    assert not list(out.rglob("*.tmp"))

    # the same file order, hence the same train/validation split as the originals
    sets = ("imagenet-sample", "bsds500/train", "bsds500/val")
    orig = [f for f in find_images([data / s for s in sets]) if f.name != "4.jpg"]
    small = find_images([out / s for s in sets])
    assert [f.relative_to(data) for f in orig] == [f.relative_to(out) for f in small]
    for a, b in zip(split_files(orig, 0.4, 0), split_files(small, 0.4, 0), strict=True):
        assert [f.relative_to(data) for f in a] == [f.relative_to(out) for f in b]
