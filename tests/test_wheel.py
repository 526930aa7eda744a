"""Installed anywhere (issue 15): a wheel built from this tree carries the shipped default, and
``colorcli colorize`` from that wheel works in a fresh virtual environment, from another folder,
with no checkout in sight. torch and the other dependencies are reused from the running
environment through a ``.pth`` line (its site-packages appended after the new venv's own, so the
wheel's colorcli is the one imported); nothing is downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _model_files import save_tiny
from PIL import Image

from colorcli.checkpoint import DEFAULT_WEIGHTS_NAME, LEGACY_WEIGHTS_NAME, repo_root

ROOT = repo_root()
SOURCES = ("colorcli", "weights", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _shipped() -> Path:
    for name in (DEFAULT_WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
        if (ROOT / "weights" / name).is_file():
            return ROOT / "weights" / name
    pytest.skip("no shipped default in weights/")


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("COLORCLI_WEIGHTS", "PYTHONPATH")}
    clean.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env})
    res = subprocess.run(cmd, cwd=cwd, env=clean, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (cmd, res.stdout, res.stderr)
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of this tree (so the build leaves nothing in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=ignore)
        elif p.is_file():
            shutil.copy2(p, src / name)
    dist = tmp / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         str(src), "-w", str(dist)],
        cwd=tmp,
    )  # fmt: skip
    (found,) = dist.glob("colorcli-*.whl")
    return found


def test_wheel_contains_the_default_once(wheel: Path) -> None:
    shipped = _shipped()
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        packed = zf.read(f"colorcli/_weights/{shipped.name}")
    assert packed == shipped.read_bytes()
    assert "colorcli/_weights/MODEL_CARD.md" in names
    assert "colorcli/assets/model_card.md" in names and "colorcli/py.typed" in names
    assert "colorcli/turing/page.html" in names  # the Turing test's page, read as package data
    assert not any(n.startswith("weights/") for n in names)  # mapped into the package only
    models = [n for n in names if n.startswith("colorcli/_weights/colorcli-default")]
    assert sum(not n.endswith(".onnx") for n in models) == 1
    twin = shipped.with_suffix(".onnx")
    extra = 0
    if twin.is_file():  # the ONNX twin of the default travels with it
        with zipfile.ZipFile(wheel) as zf:
            assert zf.read(f"colorcli/_weights/{twin.name}") == twin.read_bytes()
        extra = twin.stat().st_size
    assert wheel.stat().st_size < shipped.stat().st_size + extra + 5_000_000


def test_installed_wheel_colorizes_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
          str(wheel)], cwd=tmp_path)  # fmt: skip
    purelib = _run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
    ).stdout.strip()
    (Path(purelib) / "_reuse_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    photo = elsewhere / "old photo.png"
    Image.open(ROOT / "examples" / "chelsea_gray.jpg").convert("L").save(photo)
    where = _run(
        [str(py), "-c", "import colorcli, colorcli.checkpoint as c; "
         "print(colorcli.__file__); print(c.default_model_path())"],
        elsewhere,
    ).stdout.split()  # fmt: skip
    assert all(w.startswith(purelib) for w in where), where  # the wheel's, not the checkout's
    assert Path(where[1]).parent.name == "_weights"

    colorcli = str(venv / "bin" / "colorcli")
    _run([colorcli, "colorize", photo.name, "-o", "out", "--device", "cpu"], elsewhere)
    rgb = np.asarray(Image.open(elsewhere / "out" / photo.name).convert("RGB"), dtype=float)
    assert rgb.shape[:2] == Image.open(photo).size[::-1]
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() > 1  # colour was added

    info = json.loads(_run([colorcli, "info", "default", "--json"], elsewhere).stdout)
    assert info["path"] == where[1]
    mine = save_tiny(tmp_path / "mine.safetensors")  # $COLORCLI_WEIGHTS still overrides
    info = json.loads(
        _run([colorcli, "info", "default", "--json"], elsewhere, COLORCLI_WEIGHTS=str(mine)).stdout
    )
    assert info["path"] == str(mine) and info["container"] == "safetensors"
