"""The colorcli ONNX format: the metadata an exported model carries, the sha256 that ties it to
its model file, and where exported twins are cached. Imports neither torch nor onnxruntime.

Where the ``.onnx`` of a model file lives (``backend.find_twin``): beside it (``model.onnx`` for
``model.safetensors``), else in the user cache, ``$XDG_CACHE_HOME/colorcli/onnx`` (default
``~/.cache/colorcli/onnx``; ``COLORCLI_CACHE`` overrides ``.../colorcli``), named by the
sha256 of the model file; a twin counts only if its recorded sha256 is the model file's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from colorcli.errors import BadWeights
from colorcli.fsutil import file_sha256 as file_sha256  # the one file digest; re-exported

META_KEY = "colorcli"
FORMAT = "colorcli-onnx"
VERSION = 1
INSTALL_HINT = "pip install 'colorcli[onnx]'"


def cache_dir() -> Path:
    """Folder of the exported twins of model files (see the module docstring)."""
    root = os.environ.get("COLORCLI_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "colorcli" / "onnx"


def twin_beside(model_path: Path) -> Path:
    return model_path.with_suffix(".onnx")


def cached_twin(sha: str) -> Path:
    return cache_dir() / f"{sha}.onnx"


def parse_meta(path: Path, raw: str | None) -> dict[str, Any]:
    """The colorcli metadata of ONNX model ``path`` from its ``META_KEY`` entry ``raw`` (JSON);
    BadWeights naming the file when it is missing, not ours, or from a newer colorcli."""
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadWeights(f"{path}: an ONNX model without colorcli metadata (use export-onnx)")
    if meta.get("version", 0) > VERSION:
        raise BadWeights(f"{path}: made by a newer colorcli (format {meta.get('version')})")
    return meta
