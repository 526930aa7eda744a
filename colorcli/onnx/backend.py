"""Which backend ``Colorizer.load`` uses (``choose``), and the ``.onnx`` twin of a model file:
found beside it or in the cache (``find_twin``), else exported there once (``ensure_twin``).

Imports neither torch nor onnxruntime at import time; the exporter (torch) is imported only
when a twin has to be made.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from colorcli import choices
from colorcli.errors import BadWeights, UsageError
from colorcli.onnx.format import INSTALL_HINT, cached_twin, file_sha256, twin_beside
from colorcli.onnx.runtime import OnnxModel, onnxruntime_available, read_meta

BACKENDS = choices.values(choices.Backend)


def find_twin(model_path: Path, sha: str | None = None) -> Path | None:
    """The exported twin of ``model_path`` (beside it, else in the cache) whose recorded sha256
    is the model file's, or None."""
    sha = sha or file_sha256(model_path)
    for cand in (twin_beside(model_path), cached_twin(sha)):
        if cand.is_file():
            try:
                if read_meta(cand).get("source_sha256") == sha:
                    return cand
            except BadWeights:
                continue
    return None


def _open_if_twin(cand: Path, sha: str) -> OnnxModel | None:
    """``cand`` opened, if it is a readable export of the model file with digest ``sha``."""
    if not cand.is_file():
        return None
    try:
        model = OnnxModel.open(cand)
    except BadWeights:
        return None
    return model if model.meta.get("source_sha256") == sha else None


def open_twin(path: Path) -> OnnxModel:
    """``OnnxModel.open(ensure_twin(path))`` with one ONNX Runtime session instead of two (the
    twin's metadata is checked on the session that then runs it: a session costs about a
    tenth of a second of a cold start)."""
    if path.suffix == ".onnx" or not path.is_file():
        return OnnxModel.open(ensure_twin(path))
    sha = file_sha256(path)
    for cand in (twin_beside(path), cached_twin(sha)):
        model = _open_if_twin(cand, sha)
        if model is not None:
            return model
    return OnnxModel.open(ensure_twin(path))


def _gpu_likely() -> bool:
    """Would ``--device auto`` pick a GPU? Answered without importing torch: an NVIDIA device
    node, or Apple silicon (MPS)."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _fail(backend: str, message: str) -> None:
    if backend == "onnx":
        raise UsageError(f"--backend onnx: {message}")


def model_path(spec: str | os.PathLike[str] | None) -> Path:
    """A local model path; ``hf://`` specs resolve through checkpoint (torch), the default
    without torch (``colorcli.weights``)."""
    if spec is None or spec == "default":
        from colorcli.weights import WEIGHTS_ENV, default_model_path

        path = default_model_path()
        if not path.is_file():
            raise UsageError(f"no default model is shipped yet ({path} does not exist); set "
                             f"{WEIGHTS_ENV} or pass --model")
        return path
    if str(spec).startswith("hf://"):
        from colorcli.checkpoint import resolve_model_spec

        return resolve_model_spec(spec)
    return Path(spec).expanduser()


def ensure_twin(path: Path) -> Path:
    """The twin of model file ``path``, exported once into the cache when there is none."""
    if path.suffix == ".onnx":
        return path
    if not path.is_file():
        from colorcli.errors import MissingFile

        raise MissingFile(f"{path}: no such model file")
    sha = file_sha256(path)
    twin = find_twin(path, sha)
    if twin is not None:
        return twin
    from colorcli.onnx.export import export_onnx

    out = cached_twin(sha)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(path, out)
    return out


def choose(
    spec: str | os.PathLike[str] | None,
    device: str | None,
    backend: str,
    half: bool | None = None,
) -> OnnxModel | None:
    """The ONNX model ``Colorizer.load`` should use, or None for the torch backend.

    ``auto``: onnx when onnxruntime is installed, the device is (or auto-picks) the CPU, no
    half precision is asked for, and the model's twin exists or can be exported (once, into the
    cache); otherwise torch. ``onnx``: the same conditions, each failure a UsageError.
    """
    if backend not in BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        return None
    if not onnxruntime_available():
        _fail(backend, f"onnxruntime is not installed ({INSTALL_HINT})")
        return None
    dev = (device or "auto").lower()
    if dev != "cpu" and not (dev == "auto" and not _gpu_likely()):
        _fail(backend, f"ONNX Runtime runs on the CPU here, not on device {device!r}")
        return None
    if half:
        _fail(backend, "half precision is a CUDA feature of the torch backend")
        return None
    path = model_path(spec)
    if backend == "onnx":
        return open_twin(path)
    try:
        return open_twin(path)
    except UsageError:
        raise
    except Exception:  # no onnx exporter, an unexportable model...: torch does the job
        if path.suffix == ".onnx":
            raise
        return None


__all__ = ["BACKENDS", "choose", "ensure_twin", "find_twin", "model_path", "open_twin"]
