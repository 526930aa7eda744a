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
    import cv2

    b, q, h, w = logits.shape
    if method == "mode":
        idx = logits.argmax(axis=1)
        return np.ascontiguousarray(bins[idx].transpose(0, 3, 1, 2), dtype=np.float32)
    t = 1.0 if method == "mean" else float(temperature)
    if t <= 0:
        raise UsageError(f"--temperature must be > 0, got {t}")
    # one product gives the weighted sums and the softmax's denominator (a row of ones), so the
    # probabilities are never normalised; einsum, not BLAS: a tiny product whose BLAS threads
    # cost more to wake than the product itself
    weights = np.vstack([bins.T, np.ones((1, q))]).astype(np.float32)
    out = np.empty((b, 2, h, w), dtype=np.float32)
    for i in range(b):
        x = logits[i].reshape(q, h * w) * np.float32(1.0 / t)
        x -= x.max(axis=0, keepdims=True)
        cv2.exp(x, dst=x)  # 5x numpy's exp (measured), equal to float32 rounding (tested)
        sums = np.einsum("kq,qn->kn", weights, x)
        np.divide(sums[:2], sums[2:], out=out[i].reshape(2, h * w))
    return out


def upsample_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(B, C, h, w)`` -> ``(B, C, H, W)`` float32, as ``F.interpolate(x, size, mode="bilinear",
    align_corners=False)``: OpenCV's INTER_LINEAR has the same half-pixel centres and edge
    clamping (equal to 1e-5, tested), at a tenth of the numpy gathers' time."""
    import cv2

    b, c = x.shape[:2]
    out = np.empty((b, c, *size), dtype=np.float32)
    src = np.ascontiguousarray(x, dtype=np.float32)
    for i in range(b):
        for j in range(c):
            cv2.resize(src[i, j], (size[1], size[0]), dst=out[i, j], interpolation=cv2.INTER_LINEAR)
    return out


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
        # no busy-waiting between operators: in a folder run the reader and writer threads need
        # the cores the pool would spin on (measured: the pipeline 8-15 % faster, the bare
        # forward unchanged; benchmarks/bench_colorize.py)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
