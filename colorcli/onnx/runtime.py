"""An exported colorcli model in an ONNX Runtime session (``OnnxModel``), without torch.

``OnnxModel.predict_ab`` repeats ``checkpoint.LoadedModel.predict_ab`` in numpy: edge padding
to the multiple, the network, annealed-mean decoding (softmax of logits / T, then a matrix
product with the bins, at the logits' stride), bilinear upsampling with half-pixel centres
(``F.interpolate(..., align_corners=False)``), the crop. onnxruntime is imported only when a
model opens.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorcli.errors import BadWeights, UsageError
from colorcli.onnx.format import META_KEY, parse_meta


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def read_meta(path: Path) -> dict[str, Any]:
    """The colorcli metadata of an exported model (BadWeights naming the file otherwise)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadWeights(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    return _meta_of(path, sess)


def _meta_of(path: Path, sess: Any) -> dict[str, Any]:
    return parse_meta(path, sess.get_modelmeta().custom_metadata_map.get(META_KEY))


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


__all__ = ["OnnxModel", "decode_np", "onnxruntime_available", "read_meta", "upsample_bilinear"]
