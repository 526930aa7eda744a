"""Where the shipped default model lies (torch-free, so that the ONNX path can find it without
importing torch): ``$COLORCLI_WEIGHTS``, the installed package's copy, a checkout's ``weights/``."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

DEFAULT_WEIGHTS_NAME = "colorcli-default.safetensors"
LEGACY_WEIGHTS_NAME = "colorcli-default.pt"  # the shipped default as written before safetensors
PACKAGED_WEIGHTS_DIR = "_weights"  # inside the installed package: the build copies weights/ there
WEIGHTS_ENV = "COLORCLI_WEIGHTS"


def repo_root() -> Path:
    """The folder holding the ``colorcli`` package (the repository root in a checkout)."""
    return Path(__file__).resolve().parent.parent


def weights_dirs() -> list[Path]:
    """Where the shipped default may lie, in order: the package's own copy (``colorcli/_weights``,
    put there by the build of a wheel or ``pip install .``), then ``weights/`` of a checkout."""
    dirs = []
    try:
        packaged = importlib.resources.files("colorcli").joinpath(PACKAGED_WEIGHTS_DIR)
        if isinstance(packaged, Path):
            dirs.append(packaged)
    except (ModuleNotFoundError, TypeError):  # pragma: no cover (zip imports)
        pass
    dirs.append(repo_root() / "weights")
    return dirs


def default_model_path() -> Path:
    """The shipped default model: ``$COLORCLI_WEIGHTS``, else the first of ``weights_dirs()``
    holding ``colorcli-default.safetensors`` or, from before, ``colorcli-default.pt`` (the
    safetensors file first in each). Where none exists, the path it would have (for messages)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    dirs = weights_dirs()
    for folder in dirs:
        for name in (DEFAULT_WEIGHTS_NAME, LEGACY_WEIGHTS_NAME):
            if (folder / name).is_file():
                return folder / name
    return dirs[-1] / DEFAULT_WEIGHTS_NAME
