"""sRGB <-> CIE Lab at full resolution in numpy/OpenCV: L of a whole photo, and L + ab -> sRGB.

The same formulas as ``color.lab`` (torch), from the same constants (``color.constants``), but
built for one large image rather than batches of crops: float32 row strips (``STRIP_PIXELS``),
lookup tables for the sRGB curves (OpenCV's log and exp for the 8-bit output curve), and a
small shared thread pool for large images (``PARALLEL_PIXELS``), so a 24-megapixel scan needs a
few copies of one channel, never a full-size float64 or 3-channel float array. Torch-free: the
onnx backend runs on it alone. ``lab_float64`` is the plain float64 version for small arrays
(thumbnails).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from colorcli.color.constants import (
    LAB_EPSILON,
    LAB_F_THRESHOLD,
    LAB_SLOPE,
    WHITE_D65,
    XYZ_FROM_RGB,
)

#: Pixels per row strip in the full-size colour conversions (bounds the float32 temporaries).
STRIP_PIXELS = 1 << 19
#: Images at least this large convert their strips on several threads.
PARALLEL_PIXELS = 4 << 20

_M = np.array(XYZ_FROM_RGB)
_M_INV = np.linalg.inv(_M)


def _srgb_to_linear64(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def _f_lab64(t: np.ndarray) -> np.ndarray:
    return np.where(t > LAB_EPSILON, np.cbrt(t), LAB_SLOPE * t + 16.0 / 116.0)


def _l_from_y64(y: np.ndarray) -> np.ndarray:
    return 116.0 * _f_lab64(y) - 16.0


# Lookup tables, built on first use: code value -> linear light (weighted per channel), and
# code value -> L for gray pixels.
_LUTS: dict[str, np.ndarray] = {}


def _lut(name: str) -> np.ndarray:
    table = _LUTS.get(name)
    if table is not None:
        return table
    if name.startswith("lin"):
        n = 256 if name == "lin8" else 65536
        table = _srgb_to_linear64(np.arange(n, dtype=np.float64) / (n - 1))
    elif name.startswith("gray"):
        n = 256 if name == "gray8" else 65536
        table = _l_from_y64(_srgb_to_linear64(np.arange(n, dtype=np.float64) / (n - 1)))
    elif name.startswith("out"):
        # linear light sampled at 2^16 - 1 (8-bit output: uint16 indices) or 2^20 (16-bit)
        # steps -> sRGB code value; fine enough that rounding matches the exact curve (tests).
        bits, steps = (8, (1 << 16) - 1) if name == "out8" else (16, 1 << 20)
        lin = np.arange(steps + 1, dtype=np.float64) / steps
        srgb = np.where(lin > 0.0031308, 1.055 * lin ** (1 / 2.4) - 0.055, lin * 12.92)
        peak = (1 << bits) - 1
        dtype = np.uint8 if bits == 8 else np.uint16
        table = np.clip(np.round(srgb * peak), 0, peak).astype(dtype)
        _LUTS[name] = table
        return table
    else:  # pragma: no cover - internal names only
        raise KeyError(name)
    table = table.astype(np.float32)
    _LUTS[name] = table
    return table


def _strips(height: int, width: int) -> Iterator[slice]:
    rows = max(1, STRIP_PIXELS // max(1, width))
    for r in range(0, height, rows):
        yield slice(r, min(height, r + rows))


_STRIP_POOL: ThreadPoolExecutor | None = None
_STRIP_POOL_LOCK = threading.Lock()


def _for_strips(height: int, width: int, work: Callable[[slice], None]) -> None:
    """Run ``work`` on every row strip; large images use a small shared thread pool (numpy
    releases the GIL), small ones stay on the calling thread (the batch is parallel already)."""
    strips = list(_strips(height, width))
    threads = min(8, os.cpu_count() or 1)
    if height * width < PARALLEL_PIXELS or len(strips) < 2 or threads < 2:
        for s in strips:
            work(s)
        return
    _for_slices(strips, work)


def _for_slices(slices: list[slice], work: Callable[[slice], None]) -> None:
    global _STRIP_POOL
    with _STRIP_POOL_LOCK:
        if _STRIP_POOL is None:
            threads = min(8, os.cpu_count() or 1)
            _STRIP_POOL = ThreadPoolExecutor(threads, thread_name_prefix="colorcli-strip")
        pool = _STRIP_POOL
    for _ in pool.map(work, slices):
        pass


def _for_bands(height: int, width: int, work: Callable[[slice], None]) -> None:
    """Run ``work`` on one band of rows per strip thread (images of at least
    ``PARALLEL_PIXELS``), or on all rows on the calling thread."""
    threads = min(8, os.cpu_count() or 1)
    if height * width < PARALLEL_PIXELS or threads < 2 or height < 2:
        work(slice(0, height))
        return
    step = -(-height // threads)
    _for_slices([slice(r, min(height, r + step)) for r in range(0, height, step)], work)


def luminance(pixels: np.ndarray) -> np.ndarray:
    """CIE L (D65, sRGB) of ``(H, W)`` gray or ``(H, W, 3)`` RGB pixels -> ``(H, W)`` float32.

    uint8/uint16 use exact lookup tables for the sRGB curve; float input is taken in [0, 1].
    Matches ``skimage.color.rgb2lab(...)[..., 0]``; computed on row strips so no full-size
    float64 or 3-channel float array is ever made.
    """
    if pixels.dtype not in (np.uint8, np.uint16):
        pixels = (np.clip(pixels, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    depth = "8" if pixels.dtype == np.uint8 else "16"
    h, w = pixels.shape[:2]
    if pixels.ndim == 2:
        table = _lut("gray" + depth)
        if depth == "8":  # OpenCV's LUT: the same values, 4x numpy's gather
            gray = cv2.LUT(np.ascontiguousarray(pixels), table.reshape(1, 256))
            return np.asarray(gray, dtype=np.float32)
        return table[pixels]
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"pixels must be (H, W) or (H, W, 3), got {pixels.shape}")
    lin = _lut("lin" + depth)
    out = np.empty((h, w), dtype=np.float32)
    wr, wg, wb = (np.float32(c) for c in _M[1])
    # 8-bit: OpenCV's LUT + channel mix + pow are 4x faster than numpy gathers (same result)
    lut3 = np.stack([lin * wr, lin * wg, lin * wb], axis=-1).reshape(1, -1, 3)[:, :256]
    ones = np.ones((1, 3), dtype=np.float32)

    def strip(s: slice) -> None:
        block = pixels[s]
        lum: npt.NDArray[np.float32]
        if depth == "8":
            y = cv2.transform(cv2.LUT(np.ascontiguousarray(block), lut3), ones)
            lum = np.asarray(cv2.pow(y, 1.0 / 3.0), dtype=np.float32)
        else:
            y = lin[block[..., 0]] * wr
            y += lin[block[..., 1]] * wg
            y += lin[block[..., 2]] * wb
            lum = np.cbrt(y)
        low = y <= LAB_EPSILON
        lum *= np.float32(116.0)
        lum -= np.float32(16.0)
        lum[low] = y[low] * np.float32(116.0 * LAB_SLOPE)
        out[s] = lum

    _for_strips(h, w, strip)
    return out


#: Pixels per strip of ``lab_to_rgb_image``: its four 3-channel float32 buffers (384 KiB each)
#: stay in a core's L2 cache, so its nine passes cost far less than on full-size arrays.
RGB_STRIP_PIXELS = 1 << 15


@dataclass(frozen=True)
class _RgbPlan:
    """The constants of ``lab_to_rgb_image`` at one output depth (see its comment)."""

    to_f: np.ndarray  # (3, 4): L, a, b, 1 -> fx, fy, fz
    to_index: np.ndarray  # (3, 4): u^3 + v / slope, 1 -> table index (+ 1/2) per channel
    top: float  # the last table index
    table: np.ndarray  # linear light index -> sRGB code value
    index_dtype: type
    to_linear: np.ndarray  # (3, 4): u^3 + v / slope, 1 -> linear light per channel (8-bit path)


_RGB_PLANS: dict[int, _RgbPlan] = {}


def _rgb_plan(bit_depth: int) -> _RgbPlan:
    plan = _RGB_PLANS.get(bit_depth)
    if plan is not None:
        return plan
    table = _lut("out8" if bit_depth == 8 else "out16")
    top = len(table) - 1
    t0 = 16.0 / 116.0
    to_f = np.array(
        [[1 / 116, 1 / 500, 0, t0], [1 / 116, 0, 0, t0], [1 / 116, 0, -1 / 200, t0]],
        dtype=np.float32,
    )
    # XYZ = white * f^-1(f) with f^-1(f) = u^3 + v / slope - threshold / slope (u = max(f, thr),
    # v = min(f, thr): exact above the threshold, within 6e-8 below it); the white point, the
    # RGB matrix, the table's scale and the rounding 1/2 fold into one 3x4 matrix.
    rgb_from_f = top * (_M_INV @ np.diag(WHITE_D65))
    offset = rgb_from_f @ np.full(3, -LAB_F_THRESHOLD / LAB_SLOPE) + 0.5
    to_index = np.hstack([rgb_from_f, offset[:, None]]).astype(np.float32)
    index_dtype = np.uint16 if top <= 65535 else np.int32
    # the same matrix without the table's scale and rounding 1/2: linear light (8-bit path)
    to_linear = np.hstack([rgb_from_f, (offset - 0.5)[:, None]]) / top
    plan = _RgbPlan(to_f, to_index, float(top), table, index_dtype, to_linear.astype(np.float32))
    _RGB_PLANS[bit_depth] = plan
    return plan


#: The 8-bit sRGB code value below which ``_encode_srgb8`` takes the linear segment.
_SRGB8_LINEAR_TOP = 10


def _encode_srgb8(lin: np.ndarray, work: np.ndarray, low: np.ndarray, out: np.ndarray) -> None:
    """Linear light (float32, any range; ``lin`` is overwritten, ``work`` is scratch of its
    shape) -> 8-bit sRGB code values in ``out``, clipped to [0, 255] and rounded half to even.

    Five float passes instead of a 64K-entry table gather (3x slower): with
    ``P = round(255 (1.055 x^(1/2.4) - 0.055))`` (OpenCV's log and exp, ``x`` clamped to a
    tiny positive value) and ``S = round(255 * 12.92 x)`` (both saturated to 8 bits), the code
    is ``max(min(P, S), min(S, 10))``. Why: the power curve minus the line 12.92 x is concave,
    negative at 0, zero at 0.0029 and at the sRGB threshold 0.0031308, negative above it; so
    ``min(P, S)`` is the curve from 0.0029 up (S and P round alike on [0.0029, 0.0031308]),
    while below 0.0029 S is at most 9.5 -> 10 and the line wins. The code equals the float64
    ``round(255 * srgb(clip(x, 0, 1)))`` except within 1e-5 of a rounding boundary (tests).
    """
    cv2.max(lin, (1e-30,) * 4, dst=lin)  # type: ignore[call-overload, unused-ignore]
    cv2.convertScaleAbs(lin, low, 255.0 * 12.92)
    cv2.log(lin, dst=work)
    cv2.multiply(work, (1.0 / 2.4,) * 4, dst=work)  # type: ignore[call-overload, unused-ignore]
    cv2.exp(work, dst=work)
    # |.| of convertScaleAbs only touches x < 0.00083, where the line wins anyway
    cv2.convertScaleAbs(work, out, 255.0 * 1.055, -255.0 * 0.055)
    cv2.min(out, low, dst=out)
    cv2.min(low, (_SRGB8_LINEAR_TOP,) * 4, dst=low)  # type: ignore[call-overload, unused-ignore]
    cv2.max(out, low, dst=out)


def lab_to_rgb_image(lum: np.ndarray, ab: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Full-size L ``(H, W)`` and ab ``(H, W, 2)`` (float32, Lab units) -> sRGB ``(H, W, 3)``.

    uint8 for ``bit_depth`` 8, uint16 for 16; out-of-gamut colours are clipped like
    ``skimage.color.lab2rgb`` (negative Z to 0, then RGB to [0, 1]). Float32, on strips of
    ``RGB_STRIP_PIXELS`` that stay in cache, on the strip threads for images of at least
    ``PARALLEL_PIXELS``.
    """
    h, w = lum.shape
    if ab.shape != (h, w, 2):
        raise ValueError(f"ab must have shape {(h, w, 2)}, got {ab.shape}")
    plan = _rgb_plan(bit_depth)
    out = np.empty((h, w, 3), dtype=plan.table.dtype)
    lum = np.ascontiguousarray(lum, dtype=np.float32)
    ab = np.ascontiguousarray(ab, dtype=np.float32)
    thr = (LAB_F_THRESHOLD,) * 3 + (0.0,)
    z_floor = (-np.inf, -np.inf, 0.0, 0.0)  # skimage clips a negative f(z) to 0

    def band(rows_of_band: slice) -> None:
        # one pass per OpenCV call on cached strips; 4-tuple scalars act per channel (the cv2
        # stubs only know arrays there)
        rows = max(1, RGB_STRIP_PIXELS // w)
        shape = (min(rows, rows_of_band.stop - rows_of_band.start), w, 3)
        f, u, v = (np.empty(shape, np.float32) for _ in range(3))
        # 8-bit: the code values below the line (_encode_srgb8); 16-bit: the table indices
        low = np.empty(shape, np.uint8) if bit_depth == 8 else None
        index = np.empty(shape, plan.index_dtype) if low is None else None
        for r in range(rows_of_band.start, rows_of_band.stop, rows):
            n = min(rows, rows_of_band.stop - r)
            if n != f.shape[0]:
                f, u, v = f[:n], u[:n], v[:n]
                low = None if low is None else low[:n]
                index = None if index is None else index[:n]
            cv2.merge([lum[r : r + n], ab[r : r + n]], dst=v)
            cv2.transform(v, plan.to_f, dst=f)
            cv2.max(f, thr, dst=u)  # type: ignore[call-overload, unused-ignore]
            cv2.min(f, thr, dst=v)  # type: ignore[call-overload, unused-ignore]
            cv2.max(v, z_floor, dst=v)  # type: ignore[call-overload, unused-ignore]
            cv2.pow(u, 3, dst=u)
            cv2.scaleAdd(v, 1.0 / LAB_SLOPE, u, dst=f)
            if low is not None:
                cv2.transform(f, plan.to_linear, dst=u)
                _encode_srgb8(u, v, low, out[r : r + n])
                continue
            assert index is not None
            cv2.transform(f, plan.to_index, dst=u)
            np.clip(u, 0.0, plan.top, out=u)
            np.copyto(index, u, casting="unsafe")  # truncation: the 1/2 above rounds
            np.take(plan.table, index, out=out[r : r + n], mode="clip")

    _for_bands(h, w, band)
    return out


def lab_float64(rgb: np.ndarray) -> np.ndarray:
    """Float64 Lab ``(h, w, 3)`` of a small ``(h, w, 3)`` float RGB array in [0, 1] (the
    formulas of ``skimage.color.rgb2lab``, without strips or tables)."""
    xyz = _srgb_to_linear64(rgb.astype(np.float64)) @ _M.T / np.array(WHITE_D65)
    f = _f_lab64(xyz)
    return np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )


__all__ = [
    "PARALLEL_PIXELS",
    "RGB_STRIP_PIXELS",
    "STRIP_PIXELS",
    "lab_float64",
    "lab_to_rgb_image",
    "luminance",
]
