"""The old import path of the ``colorcli.onnx`` modules (kept for code that still imports it):
the format (``onnx.format``), the runtime (``onnx.runtime``) and the backend choice
(``onnx.backend``). Tests monkeypatch the module that uses a name, not this one."""

from __future__ import annotations

from colorcli.onnx.backend import BACKENDS, choose, ensure_twin, find_twin, model_path
from colorcli.onnx.format import (
    FORMAT,
    INSTALL_HINT,
    META_KEY,
    VERSION,
    cache_dir,
    cached_twin,
    file_sha256,
    twin_beside,
)
from colorcli.onnx.runtime import (
    OnnxModel,
    decode_np,
    onnxruntime_available,
    read_meta,
    upsample_bilinear,
)

__all__ = [
    "BACKENDS",
    "FORMAT",
    "INSTALL_HINT",
    "META_KEY",
    "VERSION",
    "OnnxModel",
    "cache_dir",
    "cached_twin",
    "choose",
    "decode_np",
    "ensure_twin",
    "file_sha256",
    "find_twin",
    "model_path",
    "onnxruntime_available",
    "read_meta",
    "twin_beside",
    "upsample_bilinear",
]
