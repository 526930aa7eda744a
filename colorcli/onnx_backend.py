"""ONNX Runtime inference for colorcli models, without torch (the ``onnx`` extra).

An exported model (``colorcli.onnx_export``, ``colorcli export-onnx``) is the network alone:
L ``(B, 1, H, W)`` in [0, 100], H and W multiples of the model's size multiple (any, dynamic) ->
bin logits ``(B, Q, H/s, W/s)`` or tanh ab ``(B, 2, H/s, W/s)``. Everything else
``checkpoint.LoadedModel.predict_ab`` does travels as JSON in the ONNX ``metadata_props``
(key ``colorcli``): the kind, bins, decode method and temperature, input size, size multiple,
ab scale, and the sha256 of the model file it came from. ``OnnxModel.predict_ab`` repeats that
path in numpy: edge padding to the multiple, the network, annealed-mean decoding (softmax of
logits / T, then a matrix product with the bins, at the logits' stride), bilinear upsampling
with half-pixel centres (``F.interpolate(..., align_corners=False)``), the crop.

Where the ``.onnx`` of a model file lives (``find_twin``): beside it (``model.onnx`` for
``model.safetensors``), else in the user cache, ``$XDG_CACHE_HOME/colorcli/onnx`` (default
``~/.cache/colorcli/onnx``; ``COLORCLI_CACHE`` overrides ``.../colorcli``), named by the
sha256 of the model file; a twin counts only if its recorded sha256 is the model file's.

This module imports neither torch nor onnxruntime at import time; ``choose`` decides the
backend of ``Colorizer.load``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorcli import choices
from colorcli.errors import BadWeights, UsageError

META_KEY = "colorcli"
FORMAT = "colorcli-onnx"
VERSION = 1
BACKENDS = choices.values(choices.Backend)
INSTALL_HINT = "pip install 'colorcli[onnx]'"


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def cache_dir() -> Path:
    """Folder of the exported twins of model files (see the module docstring)."""
    root = os.environ.get("COLORCLI_CACHE")
    if root:
        return Path(root).expanduser() / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "colorcli" / "onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_meta(path: Path) -> dict[str, Any]:
    """The colorcli metadata of an exported model (BadWeights naming the file otherwise)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadWeights(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    return _meta_of(path, sess)


def _meta_of(path: Path, sess: Any) -> dict[str, Any]:
    raw = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadWeights(f"{path}: an ONNX model without colorcli metadata (use export-onnx)")
    if meta.get("version", 0) > VERSION:
        raise BadWeights(f"{path}: made by a newer colorcli (format {meta.get('version')})")
    return meta


def twin_beside(model_path: Path) -> Path:
    return model_path.with_suffix(".onnx")


def cached_twin(sha: str) -> Path:
    return cache_dir() / f"{sha}.onnx"


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


# ------------------------------------------------------------------------------------------
# numpy versions of the decode and resize steps of LoadedModel.predict_ab


def decode_np(logits: np.ndarray, bins: np.ndarray, method: str, temperature: float) -> np.ndarray:
    """Bin logits ``(B, Q, h, w)`` -> ab ``(B, 2, h, w)`` float32 (as ``color.encode.decode``)."""
    b, q, h, w = logits.shape
    if method == "mode":
        idx = logits.argmax(axis=1)
        return np.ascontiguousarray(bins[idx].transpose(0, 3, 1, 2), dtype=np.float32)
    t = 1.0 if method == "mean" else float(temperature)
    if t <= 0:
        raise UsageError(f"--temperature must be > 0, got {t}")
    x = logits.reshape(b, q, h * w).astype(np.float32, copy=True)
    x *= np.float32(1.0 / t)
    x -= x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    ab = np.matmul(bins.T.astype(np.float32)[None], x)  # (B, 2, h*w)
    return ab.reshape(b, 2, h, w)


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows and weights of bilinear resizing with half-pixel centres (torch's
    ``align_corners=False``: source = (dst + 1/2) * in/out - 1/2, clamped at 0)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32)
    return i0, i1, lam


def upsample_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, C, h, w)`` -> ``(B, C, H, W)`` float32, as ``F.interpolate(x, size, mode="bilinear",
    align_corners=False)``."""
    h0, h1, lh = _linear_taps(x.shape[2], size[0])
    w0, w1, lw = _linear_taps(x.shape[3], size[1])
    lh = lh[:, None]
    rows = x[:, :, h0] * (1 - lh) + x[:, :, h1] * lh
    return np.ascontiguousarray(rows[..., w0] * (1 - lw) + rows[..., w1] * lw, dtype=np.float32)


@dataclass
class OnnxModel:
    """An exported colorcli model in an ONNX Runtime session (CPU)."""

    path: Path
    session: Any
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str], threads: int | None = None) -> OnnxModel:
        """``threads``: ONNX Runtime's intra-op threads (default: ``OMP_NUM_THREADS`` when set,
        else one per physical core)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise BadWeights(f"{path}: no such ONNX model")
        opts = ort.SessionOptions()
        # like torch, honour OMP_NUM_THREADS (ONNX Runtime's own pool ignores it otherwise)
        omp = os.environ.get("OMP_NUM_THREADS", "")
        threads = threads or (int(omp) if omp.isdigit() and int(omp) > 0 else None)
        if threads:
            opts.intra_op_num_threads = int(threads)
        try:
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BadWeights(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
        return cls(path, sess, _meta_of(path, sess))

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def size_multiple(self) -> int:
        return int(self.meta.get("size_multiple", 1))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network alone on padded L ``(B, 1, H, W)`` float32."""
        out: np.ndarray = self.session.run(None, {"L": x})[0]
        return out

    def predict_ab(
        self, lum: np.ndarray, temperature: float | None = None, method: str | None = None
    ) -> np.ndarray:
        """L ``(B, 1, H, W)`` float32 in [0, 100] -> ab ``(B, 2, H, W)`` float32 in Lab units
        (what ``LoadedModel.predict_ab`` gives, to float32 rounding)."""
        if lum.ndim != 4 or lum.shape[1] != 1:
            raise ValueError(f"L must have shape (B, 1, H, W), got {tuple(lum.shape)}")
        h, w = lum.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        x = np.ascontiguousarray(lum, dtype=np.float32)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        out = self.forward(x)
        if self.meta["kind"] == "classification":
            dec = self.meta["decode"]
            t = dec["temperature"] if temperature is None else temperature
            bins = np.asarray(self.meta["bins"], dtype=np.float32)
            ab = decode_np(out, bins, method or dec["method"], t)
        else:
            ab = out.astype(np.float32) * np.float32(self.meta["ab_scale"])
        if ab.shape[-2:] != x.shape[-2:]:
            ab = upsample_bilinear(ab, (x.shape[2], x.shape[3]))
        return np.ascontiguousarray(ab[..., :h, :w])


# ------------------------------------------------------------------------------------------
# Which backend Colorizer.load uses


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
    from colorcli.onnx_export import export_onnx

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
        return OnnxModel.open(ensure_twin(path))
    try:
        return OnnxModel.open(ensure_twin(path))
    except UsageError:
        raise
    except Exception:  # no onnx exporter, an unexportable model...: torch does the job
        if path.suffix == ".onnx":
            raise
        return None
