"""Colorize images at full resolution: the ``Colorizer`` API and the batch workflow.

The data path for one image::

    file -> imageio.read_image (upright, native 8/16-bit, alpha and metadata split off)
         -> L of the ORIGINAL pixels, full size, float32            (luminance)
         -> [legacy scans only, on request: denoise, CLAHE]          (restore_luminance)
         -> L resized, long side = size, aspect kept (area average) -> model -> ab
         -> ab x saturation, upsampled bilinearly to the full size
         -> joined with the full-size L -> sRGB at the input's bit depth (lab_to_rgb_image)
         -> imageio.write_image (same format, EXIF/ICC/alpha kept, atomic)

Only the small L (long side ``size``) goes through the network; the full-size work is done on
float32 row strips with numpy/OpenCV (lookup tables for the sRGB curves), so memory stays at a
few copies of one channel: a 24-megapixel scan needs well under 2 GB.

The network sees the photo at its own aspect ratio (``network_size``: the long side is the model's
input size, or ``size``), not squashed to a square as the reference eccv16 pipeline does, so a
face or a horizon keeps the proportions the network learned on (unstretched) crops; the model pads
the sides to its size multiple, and the ab it predicts is upsampled to the original size.
Images of one shape share a forward pass in a batch.

The batch workflow (``plan_colorize`` then ``colorize_jobs``) decodes and prepares images on a
thread pool while the model runs on the previous batch, and encodes/writes on another pool; the
queues are bounded so memory does not grow with the batch. It yields one ``FileResult`` per
input and never raises for a bad file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from colorcli import fsutil, imageio
from colorcli.errors import ColorcliError, EmptyDataset, UsageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

LegacyMode = Literal["auto", "on", "off"]

#: CLAHE tile grid (tiles across x down): 8x8 as in OpenCV's examples and most photo tools.
CLAHE_TILES = (8, 8)
#: Auto legacy detection: a colour file counts as a tinted monochrome scan when its ab is a
#: function of L up to local deviations of at most this many ab units (90th percentile of the
#: deviation from the per-L median, smoothed over a few thumbnail pixels). On the 12 photos of
#: data/legacy, the four monochrome prints score 0.3-2.4 and the eight colour prints 4.0-14.
TINT_RESIDUAL_MAX = 3.1
#: ... and when at most this share of its pixels (in %) has a clear colour (chroma > 5) whose hue
#: is over 35 degrees away from the dominant hue: a small red flower or a blue sky in a brown
#: scene is colour, however little of the picture it covers.
TINT_OFF_HUE_MAX = 0.5
#: Thumbnail side, L bands and smoothing (thumbnail pixels) of that test.
_TINT_SIDE, _TINT_BANDS, _TINT_SIGMA = 128, 32, 3.0
#: The side-by-side comparison image is scaled so that its longer side is at most this.
COMPARE_MAX_SIDE = 2048
#: Pixels per row strip in the full-size colour conversions (bounds the float32 temporaries).
STRIP_PIXELS = 1 << 19
#: Images at least this large convert their strips on several threads.
PARALLEL_PIXELS = 4 << 20

# sRGB (linear) <-> XYZ and the D65 white, as in scikit-image and colorcli.color.lab.
_M = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_M_INV = np.linalg.inv(_M)
_WHITE = (0.95047, 1.0, 1.08883)
_EPS = 0.008856


# ------------------------------------------------------------------------------------------
# Full-resolution colour math (numpy, float32, row strips)


def _srgb_to_linear64(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def _f_lab64(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), 7.787 * t + 16.0 / 116.0)


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
        # linear light sampled at 2^16 (8-bit output) or 2^20 (16-bit) steps -> sRGB code value;
        # the steps are fine enough that rounding matches the exact curve (see tests).
        bits, steps = (8, 1 << 16) if name == "out8" else (16, 1 << 20)
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
    global _STRIP_POOL
    strips = list(_strips(height, width))
    threads = min(8, os.cpu_count() or 1)
    if height * width < PARALLEL_PIXELS or len(strips) < 2 or threads < 2:
        for s in strips:
            work(s)
        return
    with _STRIP_POOL_LOCK:
        if _STRIP_POOL is None:
            _STRIP_POOL = ThreadPoolExecutor(threads, thread_name_prefix="colorcli-strip")
        pool = _STRIP_POOL
    for _ in pool.map(work, strips):
        pass


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
        return _lut("gray" + depth)[pixels]
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
        low = y <= _EPS
        lum *= np.float32(116.0)
        lum -= np.float32(16.0)
        lum[low] = y[low] * np.float32(116.0 * 7.787)
        out[s] = lum

    _for_strips(h, w, strip)
    return out


def _f_inv(f: np.ndarray) -> np.ndarray:
    cube = f * f * f
    low = f <= 0.2068966
    cube[low] = (f[low] - np.float32(16.0 / 116.0)) / np.float32(7.787)
    return cube


def lab_to_rgb_image(lum: np.ndarray, ab: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Full-size L ``(H, W)`` and ab ``(H, W, 2)`` (float32, Lab units) -> sRGB ``(H, W, 3)``.

    uint8 for ``bit_depth`` 8, uint16 for 16; out-of-gamut colours are clipped like
    ``skimage.color.lab2rgb`` (negative Z to 0, then RGB to [0, 1]). Row strips, float32.
    """
    h, w = lum.shape
    if ab.shape != (h, w, 2):
        raise ValueError(f"ab must have shape {(h, w, 2)}, got {ab.shape}")
    table = _lut("out8" if bit_depth == 8 else "out16")
    steps = np.float32(len(table) - 1)
    out = np.empty((h, w, 3), dtype=table.dtype)
    m = _M_INV.astype(np.float32)

    def strip(s: slice) -> None:
        fy = (lum[s] + np.float32(16.0)) / np.float32(116.0)
        fx = fy + ab[s, :, 0] / np.float32(500.0)
        fz = fy - ab[s, :, 1] / np.float32(200.0)
        np.maximum(fz, 0.0, out=fz)
        x = _f_inv(fx) * np.float32(_WHITE[0])
        y = _f_inv(fy)
        z = _f_inv(fz) * np.float32(_WHITE[2])
        for c in range(3):
            lin = x * m[c, 0]
            lin += y * m[c, 1]
            lin += z * m[c, 2]
            lin *= steps
            lin += np.float32(0.5)
            np.clip(lin, 0.0, steps, out=lin)
            out[s, :, c] = table[lin.astype(np.int32)]

    _for_strips(h, w, strip)
    return out


def _to_float_rgb(pixels: np.ndarray) -> np.ndarray:
    peak = 255.0 if pixels.dtype == np.uint8 else 65535.0
    arr = pixels.astype(np.float32) / np.float32(peak)
    return arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)


def _thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _small_lab(rgb: np.ndarray) -> np.ndarray:
    """Float64 Lab of a small ``(h, w, 3)`` float RGB thumbnail (skimage formulas)."""
    xyz = _srgb_to_linear64(rgb.astype(np.float64)) @ _M.T / np.array(_WHITE)
    f = _f_lab64(xyz)
    return np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )


def detect_legacy(pixels: np.ndarray) -> str | None:
    """Why ``pixels`` look like a monochrome scan ("grayscale", "tinted"), or None for colour.

    Grayscale files are monochrome by definition. A colour file is a tinted monochrome print
    (sepia, selenium, cyanotype, or a gray scan saved as RGB) when its ab is a function of its L.
    On a 128-pixel thumbnail, each pixel's ab is compared with the median ab of its L band (32
    bands); the deviations are smoothed (Gaussian, sigma 3 pixels), which removes grain, JPEG
    noise, thin scratches and dust but keeps coloured regions (a blue dress beside green leaves
    of the same lightness), and the 90th percentile of their size must stay under
    ``TINT_RESIDUAL_MAX``; and at most ``TINT_OFF_HUE_MAX`` % of the pixels may have a clear
    colour of another hue than the dominant one. Stained or hand-tinted scans are not caught:
    use ``--legacy``. A colour photo of a one-hue scene (a tan animal on dry grass) can pass
    for a tinted print.
    """
    if pixels.ndim == 2:
        return "grayscale"
    lab = _small_lab(_to_float_rgb(_thumbnail(pixels, _TINT_SIDE)))
    lum, ab = lab[..., 0], lab[..., 1:]
    band = np.clip((lum / 100.0 * _TINT_BANDS).astype(np.int64), 0, _TINT_BANDS - 1)
    dev = np.empty_like(ab)
    for k in np.unique(band):
        inside = band == k
        dev[inside] = ab[inside] - np.median(ab[inside], axis=0)
    sigma = _TINT_SIGMA * max(lab.shape[:2]) / _TINT_SIDE
    smooth = cv2.GaussianBlur(dev.astype(np.float32), (0, 0), sigma)
    if float(np.percentile(np.hypot(smooth[..., 0], smooth[..., 1]), 90)) >= TINT_RESIDUAL_MAX:
        return None
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    z = (ab[..., 0] + 1j * ab[..., 1])[chroma > 5.0]
    if z.size:
        off_hue = np.abs(np.angle(z * np.exp(-1j * np.angle(z.sum())))) > np.radians(35.0)
        if 100.0 * np.count_nonzero(off_hue) / chroma.size > TINT_OFF_HUE_MAX:
            return None
    return "grayscale" if np.percentile(chroma, 99) < 2.0 else "tinted"


def restore_luminance(
    lum: np.ndarray,
    *,
    clahe: bool = False,
    clahe_clip: float = 2.0,
    denoise: bool = False,
    denoise_strength: float = 7.0,
) -> np.ndarray:
    """Restoration of an old scan's L ``(H, W)`` float32 in [0, 100]; returns a new array.

    denoise: OpenCV non-local means (``fastNlMeansDenoising``, 7x7 patches, 21x21 search) on L
    quantized to 8 bits, with filter strength ``h = denoise_strength`` (in 8-bit levels; 3 is
    light, 7 moderate film grain, 12+ heavy and starts to smear detail). Runs first, since CLAHE
    would amplify the grain.
    clahe: contrast-limited adaptive histogram equalisation (``cv2.createCLAHE``, 8x8 tiles,
    clip limit ``clahe_clip``: 1 is nearly off, 2 moderate, 4 strong) for faded, flat prints. It
    is computed on 8-bit L and the sub-8-bit remainder is added back, so smooth gradients of
    16-bit scans do not band.
    """
    out = lum
    if denoise:
        l8 = np.clip(out * 2.55 + 0.5, 0, 255).astype(np.uint8)
        den = cv2.fastNlMeansDenoising(
            l8, None, h=float(denoise_strength), templateWindowSize=7, searchWindowSize=21
        )
        out = den.astype(np.float32) / np.float32(2.55)
    if clahe:
        scaled = out * np.float32(2.55)
        l8 = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
        remainder = scaled - l8
        eq = cv2.createCLAHE(clipLimit=float(clahe_clip), tileGridSize=CLAHE_TILES).apply(l8)
        out = np.clip((eq + remainder) / np.float32(2.55), 0.0, 100.0).astype(np.float32)
    return out


# ------------------------------------------------------------------------------------------
# The Colorizer


@dataclass(frozen=True)
class ColorSettings:
    """How each image is colorized (independent of where files go).

    size: long side of the network input (None: the model's own). temperature: annealed-mean T
    (None: the model file's). saturation: factor on the predicted ab (0 gives gray, 1 as predicted).
    legacy: "auto" detects monochrome/tinted scans, "on" treats every input as one, "off" none.
    Restoration (clahe, denoise) applies only to images treated as legacy scans.
    """

    size: int | None = None
    temperature: float | None = None
    saturation: float = 1.0
    legacy: LegacyMode = "auto"
    clahe: bool = False
    clahe_clip: float = 2.0
    denoise: bool = False
    denoise_strength: float = 7.0

    def __post_init__(self) -> None:
        if self.size is not None and not 16 <= self.size <= 4096:
            raise UsageError(f"--size must be between 16 and 4096, got {self.size}")
        if self.saturation < 0:
            raise UsageError(f"--saturation must be >= 0, got {self.saturation}")
        if self.temperature is not None and self.temperature <= 0:
            raise UsageError(f"--temperature must be > 0, got {self.temperature}")
        if self.legacy not in ("auto", "on", "off"):
            raise UsageError(f"legacy must be auto, on or off, got {self.legacy!r}")
        if self.clahe_clip <= 0 or self.denoise_strength <= 0:
            raise UsageError("--clahe-clip and --denoise-strength must be > 0")
        if self.legacy == "off" and (self.clahe or self.denoise):
            raise UsageError(
                "--clahe and --denoise restore old scans: they cannot be combined with --no-legacy"
            )


@dataclass
class Prepared:
    """An image ready for the network: its full-size L, the small network input, and what the
    writer needs (alpha, metadata, a comparison thumbnail)."""

    lum: np.ndarray  # (H, W) float32, [0, 100]
    l_small: np.ndarray  # (h, w) float32, long side = the network size
    decoded: imageio.DecodedImage  # pixels dropped (set to an empty array) once L is computed
    bit_depth: int
    legacy: str | None
    compare_left: np.ndarray | None = None  # (h, w, 3) uint8


#: ``predict(L (B, 1, S, S) float32 in [0, 100], temperature) -> ab (B, 2, S, S)``: torch
#: tensors on the torch backend, numpy arrays on the onnx one.
Predictor = Callable[[Any, "float | None"], Any]


class Colorizer:
    """A loaded model plus the full-resolution pipeline around it.

    ``Colorizer.load(spec, device).colorize(image)`` colorizes a PIL image or a numpy array
    (``(H, W)`` or ``(H, W, 3|4)``, uint8, uint16 or float in [0, 1]) and returns a PIL image of
    the same size (RGB, or RGBA when the input had alpha). ``colorize_array`` keeps the input's
    dtype (16-bit stays 16-bit). Colour inputs are recolorized from their L: their own colours
    are discarded.
    """

    def __init__(
        self,
        predict: Predictor,
        input_size: int,
        device: torch.device | str = "cpu",
        settings: ColorSettings | None = None,
        *,
        half: bool = False,
        name: str = "",
        backend: Literal["torch", "onnx"] = "torch",
    ) -> None:
        self._predict = predict
        self.input_size = int(input_size)
        self.backend = backend
        # onnx: ``predict`` takes and returns numpy arrays, and torch is never imported
        self.device: torch.device | str = "cpu"
        if backend == "torch":
            import torch

            self.device = torch.device(device)
        self.settings = settings or ColorSettings()
        self.half = bool(half)
        self.name = name

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike[str] | None = None,
        device: str | None = None,
        settings: ColorSettings | None = None,
        *,
        half: bool | None = None,
        channels_last: bool | None = None,
        backend: str = "auto",
        **setting_kwargs: Any,
    ) -> Colorizer:
        """Load a model (path, ``hf://owner/repo[@rev]/file``, or None for the shipped default).

        ``device``: "auto"/None (cuda > mps > cpu), "cpu", "cuda:1"... ``half``: float16/bf16
        autocast (default: on for CUDA). ``channels_last``: NHWC memory format for the
        convolutions (default on: on CPU it measured 10-30 % faster for eccv16 with oneDNN, see
        benchmarks/bench_colorize.py; on CUDA it is what tensor cores want). Extra keyword
        arguments are ``ColorSettings`` fields (``saturation=1.2``, ``legacy="on"``...).
        ``backend``: "torch", "onnx" (ONNX Runtime on the CPU, without importing torch; the
        ``onnx`` extra) or "auto": onnx when onnxruntime is installed, the device is the CPU and
        the model's ``.onnx`` twin exists beside it or in the user cache or can be exported
        there once (``colorcli.onnx_backend.choose``), else torch.
        """
        from colorcli.onnx_backend import choose

        onnx_model = choose(spec, device, backend, half)
        if onnx_model is not None:
            name = str(spec) if spec is not None else "default"
            return cls(
                onnx_model.predict_ab,
                onnx_model.input_size,
                "cpu",
                replace(settings or ColorSettings(), **setting_kwargs),
                name=name,
                backend="onnx",
            )
        import torch

        from colorcli.checkpoint import load_model
        from colorcli.device import check_half, pick_device

        settings = replace(settings or ColorSettings(), **setting_kwargs)
        dev = pick_device(device)
        check_half(dev, half)
        loaded = load_model(spec, dev)
        on_cuda = dev.type == "cuda"
        nhwc = True if channels_last is None else channels_last
        if nhwc:
            loaded.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

        def predict(lum: torch.Tensor, temperature: float | None) -> torch.Tensor:
            if nhwc:
                lum = lum.contiguous(memory_format=torch.channels_last)
            return loaded.predict_ab(lum, temperature=temperature)

        name = str(spec) if spec is not None else "default"
        return cls(
            predict,
            loaded.input_size,
            dev,
            settings,
            half=on_cuda if half is None else half,
            name=name,
        )

    @property
    def size(self) -> int:
        """The long side of the network input."""
        return self.settings.size or self.input_size

    def with_settings(self, **changes: Any) -> Colorizer:
        """The same model with some ``ColorSettings`` changed."""
        return Colorizer(
            self._predict,
            self.input_size,
            self.device,
            replace(self.settings, **changes),
            half=self.half,
            name=self.name,
            backend=self.backend,
        )

    # -- the three stages -------------------------------------------------------------------

    def prepare(self, decoded: imageio.DecodedImage, compare: bool = False) -> Prepared:
        """Stage 1 (any thread): full-size L, legacy restoration, the small network input."""
        s = self.settings
        pixels = decoded.pixels
        if s.legacy == "on":
            legacy: str | None = "forced"
        elif s.legacy == "off":
            legacy = None
        else:
            legacy = detect_legacy(pixels)
        lum = luminance(pixels)
        if legacy and (s.clahe or s.denoise):
            lum = restore_luminance(
                lum,
                clahe=s.clahe,
                clahe_clip=s.clahe_clip,
                denoise=s.denoise,
                denoise_strength=s.denoise_strength,
            )
        left = None
        if compare:
            left = imageio.to_uint8(_thumbnail(pixels, COMPARE_MAX_SIDE // 2))
            if left.ndim == 2:
                left = np.repeat(left[..., None], 3, axis=2)
        l_small = cv2.resize(lum, network_size(lum.shape, self.size), interpolation=cv2.INTER_AREA)
        bit_depth = decoded.bit_depth
        decoded.pixels = np.empty((0, 0), dtype=pixels.dtype)  # free the full-size pixels
        return Prepared(lum, l_small, decoded, bit_depth, legacy, left)

    def predict_ab(self, l_small: np.ndarray) -> np.ndarray:
        """Stage 2 (one thread): L ``(B, S, S)`` float32 -> ab ``(B, 2, S, S)`` float32."""
        if self.backend == "onnx":
            lum = np.ascontiguousarray(l_small, dtype=np.float32)[:, None]
            ab_np: np.ndarray = self._predict(lum, self.settings.temperature)
            return ab_np
        import torch

        from colorcli.device import autocast_dtype

        x = torch.from_numpy(np.ascontiguousarray(l_small, dtype=np.float32))[:, None]
        device = torch.device(self.device)
        dtype = autocast_dtype(device) if self.half else None
        with torch.inference_mode():
            x = x.to(device, non_blocking=True)
            if dtype is not None:
                with torch.autocast(device.type, dtype=dtype):
                    ab = self._predict(x, self.settings.temperature)
            else:
                ab = self._predict(x, self.settings.temperature)
            return ab.float().cpu().numpy()

    def finish(self, prepared: Prepared, ab_small: np.ndarray) -> np.ndarray:
        """Stage 3 (any thread): ab ``(2, S, S)`` -> full-size sRGB ``(H, W, 3)`` joined with
        the full-size L, at the input's bit depth."""
        h, w = prepared.lum.shape
        ab = np.ascontiguousarray(ab_small.transpose(1, 2, 0), dtype=np.float32)
        if self.settings.saturation != 1.0:
            ab *= np.float32(self.settings.saturation)
        ab_full = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
        if ab_full.ndim == 2:  # cv2 drops a trailing channel dim of 1 only; keep (H, W, 2)
            ab_full = ab_full[..., None]
        return lab_to_rgb_image(prepared.lum, ab_full, prepared.bit_depth)

    # -- in-memory API ------------------------------------------------------------------------

    def colorize_array(self, array: np.ndarray) -> np.ndarray:
        """``(H, W)`` / ``(H, W, 3)`` / ``(H, W, 4)`` uint8, uint16 or float [0, 1] -> colorized
        ``(H, W, 3)`` (or ``(H, W, 4)`` with the alpha passed through) of the same dtype."""
        decoded = imageio.decoded_from_array(array)
        rgb = self._colorize_decoded(decoded)
        out = rgb if decoded.alpha is None else np.dstack([rgb, decoded.alpha])
        if np.issubdtype(array.dtype, np.floating):
            return out.astype(np.float32) / np.float32(65535.0)
        return out

    def colorize(self, image: Image.Image | np.ndarray) -> Image.Image:
        """Colorize a PIL image (EXIF orientation applied) or an array; returns an 8-bit PIL
        image of the same (upright) size: RGB, or RGBA when the input has alpha."""
        from PIL import Image as PILImage

        decoded = (
            imageio.decoded_from_array(image)
            if isinstance(image, np.ndarray)
            else imageio.decoded_from_pil(image)
        )
        rgb = imageio.to_uint8(self._colorize_decoded(decoded))
        if decoded.alpha is None:
            return PILImage.fromarray(rgb, "RGB")
        return PILImage.fromarray(np.dstack([rgb, imageio.to_uint8(decoded.alpha)]), "RGBA")

    def _colorize_decoded(self, decoded: imageio.DecodedImage) -> np.ndarray:
        prepared = self.prepare(decoded)
        ab = self.predict_ab(prepared.l_small[None])[0]
        return self.finish(prepared, ab)


# ------------------------------------------------------------------------------------------
# Batch workflow


OutputFormat = Literal["JPEG", "PNG", "TIFF", "WEBP", "BMP"]


@dataclass(frozen=True)
class ColorizeConfig:
    """Everything ``colorcli colorize`` was asked to do."""

    inputs: tuple[str, ...]
    out_dir: Path = Path("colorized")
    model: str | None = None
    device: str | None = None
    batch_size: int = 4
    workers: int = 2
    format: OutputFormat | None = None
    quality: int = 95
    overwrite: bool = False
    compare: bool = False
    max_pixels: int | None = None
    half: bool | None = None
    settings: ColorSettings = field(default_factory=ColorSettings)
    #: "auto", "onnx" or "torch" (``Colorizer.load``).
    backend: str = "auto"
    #: ``(i, n)``: plan only the i-th of n interleaved parts of the file list (``parse_shard``).
    shard: tuple[int, int] | None = None
    #: Colorize photos that are already in colour too (from their L). Off: they are skipped
    #: (``FileResult.skip == "colour"``). ``settings.legacy == "on"`` treats every input as a
    #: monochrome scan, so nothing is skipped as colour then.
    recolor: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise UsageError("give at least one input file, folder or glob pattern")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be between 1 and 100, got {self.quality}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise UsageError(f"--max-pixels must be positive, got {self.max_pixels}")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise UsageError(f"--shard I/N needs 0 <= I < N, got {self.shard[0]}/{self.shard[1]}")


Status = Literal["todo", "done", "skipped", "failed"]
#: Why a file was skipped: its output exists, made with the same model and settings ("exists")
#: or with others ("other-settings": kept, --overwrite redoes it); or it is a colour photo.
Skip = Literal["", "exists", "other-settings", "colour"]


@dataclass
class Job:
    """One input and where its output goes; ``status`` is decided by planning or by the run."""

    source: Path
    output: Path
    compare: Path | None = None
    status: Status = "todo"
    message: str = ""
    skip: Skip = ""
    record: str = ""  # what the output is made with (imageio.write_image's ``record``)


@dataclass
class FileResult:
    """What happened to one input."""

    source: Path
    output: Path
    status: Status
    message: str = ""
    seconds: float = 0.0
    legacy: str | None = None
    notes: list[str] = field(default_factory=list)
    exception: BaseException | None = field(default=None, repr=False)  # for --debug
    skip: Skip = ""


@dataclass
class Plan:
    """The jobs of a batch and what planning found (for the CLI to report)."""

    jobs: list[Job]
    out_dir: Path
    excluded_in_out_dir: int = 0
    stale_temp_removed: int = 0
    ignored: int = 0  # files in the input folders that are not images (by extension)

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "todo"]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def compare_path(output: Path) -> Path:
    """Where the side-by-side input|output image of ``output`` goes (``name.compare.jpg``)."""
    return output.with_name(f"{output.stem}.compare.jpg")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (``--shard``) -> ``(I, N)``; None stays None; UsageError otherwise."""
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not (sep and i.strip().isdigit() and n.strip().isdigit()):
        raise UsageError(f"--shard takes I/N (e.g. 0/4: the first of 4 parts), got {text!r}")
    return int(i), int(n)


def plan_colorize(config: ColorizeConfig) -> Plan:
    """Expand the inputs and decide each output path and whether it is skipped.

    Raises UsageError when an input is missing, OUT_DIR is a file or cannot be written, and
    EmptyDataset when the inputs hold no image file at all. Files inside OUT_DIR are left out
    (they are earlier outputs); outputs are never inputs. An existing output made with the same
    model and settings (its record, see ``output_record``) is skipped; one made otherwise is
    kept and skipped as "other-settings"; ``overwrite`` redoes both. Two inputs that would write
    the same output fail with a message. Leftover temporary files of a killed run are deleted.
    """
    out_dir = Path(config.out_dir)
    ignored: list[Path] = []
    found = imageio.find_images_with_roots(config.inputs, ignored)
    if not found:
        raise EmptyDataset(
            f"nothing to colorize: no image file in {', '.join(config.inputs)}"
            + (f" ({len(ignored)} other files ignored)" if ignored else "")
            + f"; images are {', '.join(sorted(imageio.IMAGE_EXTENSIONS))}"
        )
    out_resolved = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        is_input = any(f.resolve() == out_resolved for f, _ in found)
        what = "one of the input files" if is_input else "an existing file"
        raise UsageError(f"output folder {out_dir} is {what}; choose a folder with -o")
    jobs: list[Job] = []
    owners: dict[Path, Path] = {}
    excluded = 0
    for src, rel in found:
        if _inside(src.resolve(), out_resolved):
            excluded += 1
            continue
        out = out_dir / rel
        if config.format is not None:
            current = imageio.format_for_extension(out.suffix)
            if current != config.format:
                out = out.with_suffix(imageio.FORMAT_EXTENSIONS[config.format])
        elif out.suffix.lower() in imageio.WRITE_INSTEAD:
            out = out.with_suffix(imageio.WRITE_INSTEAD[out.suffix.lower()])
        job = Job(src, out, compare_path(out) if config.compare else None)
        job.record = output_record(config, out)
        key = out.resolve()
        if key in owners:
            job.status = "failed"
            job.message = (
                f"{src}: its output {out} would also be written for {owners[key]}; "
                "colorize them separately or give their parent folder"
            )
        else:
            owners[key] = src
            done = out.exists() and (job.compare is None or job.compare.exists())
            if done and not config.overwrite:
                _skip_existing(job)
        jobs.append(job)
    if excluded and not jobs:
        raise UsageError(
            f"every input is inside the output folder {out_dir} (outputs would replace them); "
            "choose another folder with -o"
        )
    if config.shard is not None:  # every n-th file of the sorted list: the same split each run
        jobs = jobs[config.shard[0] :: config.shard[1]]
    if any(j.status == "todo" for j in jobs):
        fsutil.check_writable(out_dir)  # before the model loads: exit 2, one line
    removed = imageio.clean_temp_files(out_dir)
    return Plan(jobs, out_dir, excluded, removed, len(ignored))


def output_record(config: ColorizeConfig, output: Path) -> str:
    """What an output is made with, as compact JSON: the model (as given: a resolved local path,
    an ``hf://`` address or "default") and every setting that changes its pixels (quality only
    for JPEG and WebP). Stored in each output (``imageio.write_image``'s ``record``)."""
    s = config.settings
    model = config.model or "default"
    if model != "default" and "://" not in model:
        model = str(Path(model).resolve())
    fmt = config.format or imageio.format_for_extension(output.suffix)
    rec: dict[str, Any] = {
        "model": model,
        "size": s.size,
        "temperature": s.temperature,
        "saturation": s.saturation,
        "legacy": s.legacy,
        "clahe": s.clahe_clip if s.clahe else False,
        "denoise": s.denoise_strength if s.denoise else False,
    }
    if fmt in ("JPEG", "WEBP"):
        rec["quality"] = config.quality
    return json.dumps({"colorcli": 1, **rec}, sort_keys=True, separators=(",", ":"))


def _record_changes(old: str | None, new: str) -> str:
    """``"saturation 1.0 -> 1.5, model a.pt -> b.pt"``: how two records differ."""
    try:
        before = json.loads(old) if old else None
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return "no colorcli settings recorded"
    after = json.loads(new)
    keys = [k for k in after if before.get(k) != after[k]] or ["version"]
    return ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in keys)


def _skip_existing(job: Job) -> None:
    recorded = imageio.read_record(job.output)
    job.status = "skipped"
    if recorded == job.record:
        job.skip = "exists"
        job.message = "output exists, made with the same settings (--overwrite redoes it)"
    else:
        job.skip = "other-settings"
        job.message = (
            f"output exists, made with other settings ({_record_changes(recorded, job.record)}): "
            "kept (--overwrite redoes it)"
        )


class _ColourPhoto(Exception):
    """Raised by a reader thread for a colour photo that the batch keeps as it is."""


COLOUR_MESSAGE = "already in colour: kept as it is (--recolor colorizes it from its lightness)"


def _prepare_job(colorizer: Colorizer, job: Job, config: ColorizeConfig) -> Prepared:
    decoded = imageio.read_image(job.source, config.max_pixels)
    keep_colour = not config.recolor and config.settings.legacy != "on"
    if keep_colour and detect_legacy(decoded.pixels) is None:
        raise _ColourPhoto(job.source)
    return colorizer.prepare(decoded, compare=config.compare)


def _write_compare(path: Path, left: np.ndarray, rgb: np.ndarray) -> None:
    right = imageio.to_uint8(_thumbnail(rgb, COMPARE_MAX_SIDE // 2))
    if right.shape[0] != left.shape[0]:
        right = cv2.resize(right, (left.shape[1], left.shape[0]), interpolation=cv2.INTER_AREA)
    imageio.write_image(path, np.hstack([left, right]), format="JPEG", quality=90)


def _finish_job(
    colorizer: Colorizer,
    job: Job,
    prepared: Prepared,
    ab_small: np.ndarray,
    config: ColorizeConfig,
    started: float,
) -> FileResult:
    rgb = colorizer.finish(prepared, ab_small)
    dec = prepared.decoded
    fmt = config.format or imageio.format_for_extension(job.output.suffix) or dec.format
    job.output.parent.mkdir(parents=True, exist_ok=True)
    notes = list(dec.notes)
    if job.output.suffix.lower() != job.source.suffix.lower() and config.format is None:
        notes.append(f"{job.source.suffix.lower()} input written as {job.output.suffix.lower()}")
    notes += imageio.write_image(
        job.output,
        rgb,
        alpha=dec.alpha,
        format=fmt,
        quality=config.quality,
        exif=dec.exif,
        icc_profile=dec.icc_profile,
        save_options=dec.save_options,
        record=job.record or None,
    )
    if job.compare is not None and prepared.compare_left is not None:
        _write_compare(job.compare, prepared.compare_left, rgb)
    return FileResult(
        job.source,
        job.output,
        "done",
        seconds=time.perf_counter() - started,
        legacy=prepared.legacy,
        notes=notes,
    )


def _failure(job: Job, exc: BaseException) -> FileResult:
    if isinstance(exc, ColorcliError):
        msg = str(exc)
        if str(job.source) not in msg:
            msg = f"{job.source}: {msg}"
    elif isinstance(exc, OSError):
        msg = f"{job.source}: cannot write {job.output} ({exc.strerror or exc})"
    else:
        msg = f"{job.source}: {type(exc).__name__}: {exc}"
    return FileResult(job.source, job.output, "failed", msg, exception=exc)


def network_size(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    """(width, height) of the network input for an image of ``shape`` (H, W, ...): the long
    side is ``side``, the short side keeps the aspect ratio (at least 8 px); the model pads
    to its size multiple."""
    h, w = int(shape[0]), int(shape[1])
    scale = side / max(h, w)
    return max(8, round(w * scale)), max(8, round(h * scale))


def _predict_by_shape(colorizer: Colorizer, smalls: list[np.ndarray]) -> list[np.ndarray]:
    """ab of each network input, one forward per group of equal shapes (in input order)."""
    out: list[np.ndarray | None] = [None] * len(smalls)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(smalls):
        groups.setdefault(x.shape, []).append(i)
    for idx in groups.values():
        abs_ = colorizer.predict_ab(np.stack([smalls[i] for i in idx]))
        for i, ab in zip(idx, abs_, strict=True):
            out[i] = ab
    return [a for a in out if a is not None]


def colorize_jobs(
    jobs: Sequence[Job], colorizer: Colorizer, config: ColorizeConfig
) -> Iterator[FileResult]:
    """Run the jobs; yield one FileResult per job (planned skips and failures first).

    Decoding/preparation runs on ``config.workers`` threads at most ``2 x batch_size`` images
    ahead of the model; finishing/encoding/writing runs on another ``config.workers`` threads
    with at most ``2 x workers`` images queued. Bad files become "failed" results; errors of
    the model itself (e.g. out of memory) propagate.
    """
    for job in jobs:
        if job.status != "todo":
            yield FileResult(job.source, job.output, job.status, job.message, skip=job.skip)
    todo = iter([j for j in jobs if j.status == "todo"])
    readers = ThreadPoolExecutor(config.workers, thread_name_prefix="colorcli-read")
    writers = ThreadPoolExecutor(config.workers, thread_name_prefix="colorcli-write")
    reads: deque[tuple[Job, float, Future[Prepared]]] = deque()
    writes: dict[Future[FileResult], Job] = {}

    def fill() -> None:
        while len(reads) < 2 * config.batch_size:
            job = next(todo, None)
            if job is None:
                return
            fut = readers.submit(_prepare_job, colorizer, job, config)
            reads.append((job, time.perf_counter(), fut))

    def collect(done: set[Future[FileResult]]) -> Iterator[FileResult]:
        for fut in done:
            job = writes.pop(fut)
            exc = fut.exception()
            yield _failure(job, exc) if exc is not None else fut.result()

    try:
        fill()
        while reads:
            batch: list[tuple[Job, float, Prepared]] = []
            while reads and len(batch) < config.batch_size:
                job, started, fut = reads.popleft()
                exc = fut.exception()
                if isinstance(exc, _ColourPhoto):
                    yield FileResult(
                        job.source, job.output, "skipped", COLOUR_MESSAGE, skip="colour"
                    )
                elif exc is not None:
                    yield _failure(job, exc)
                else:
                    batch.append((job, started, fut.result()))
            fill()  # the next batch decodes while the model runs on this one
            if not batch:
                continue
            ab = _predict_by_shape(colorizer, [p.l_small for _, _, p in batch])
            for (job, started, prep), ab_i in zip(batch, ab, strict=True):
                while len(writes) >= 2 * config.workers:
                    done, _ = wait(list(writes), return_when=FIRST_COMPLETED)
                    yield from collect(set(done))
                fut_w = writers.submit(_finish_job, colorizer, job, prep, ab_i, config, started)
                writes[fut_w] = job
            del batch
            yield from collect({f for f in writes if f.done()})
        while writes:
            done, _ = wait(list(writes), return_when=FIRST_COMPLETED)
            yield from collect(set(done))
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)


@dataclass
class Summary:
    """Counts and time of a finished batch."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    legacy: int = 0  # done images treated as legacy scans (grayscale, tinted or forced)
    results: list[FileResult] = field(default_factory=list)
    ignored: int = 0  # files in the input folders that are not images (Plan.ignored)

    def skipped_for(self, reason: Skip) -> list[Path]:
        """The inputs skipped for ``reason`` ("colour": the colour photos kept as they are)."""
        return [r.source for r in self.results if r.status == "skipped" and r.skip == reason]

    def add(self, result: FileResult) -> None:
        self.results.append(result)
        if result.status == "done":
            self.done += 1
            self.legacy += result.legacy is not None
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


def colorize_paths(
    config: ColorizeConfig,
    colorizer: Colorizer | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Summary:
    """The whole batch in one call (plan, load the model if needed, run); for Python users.

    The CLI uses ``plan_colorize`` and ``colorize_jobs`` directly to draw progress.
    """
    start = time.perf_counter()
    plan = plan_colorize(config)
    summary = Summary(ignored=plan.ignored)
    if plan.todo and colorizer is None:
        colorizer = Colorizer.load(
            config.model, config.device, config.settings, half=config.half, backend=config.backend
        )
    if colorizer is None:
        results: Iterator[FileResult] = (
            FileResult(j.source, j.output, j.status, j.message, skip=j.skip) for j in plan.jobs
        )
    else:
        results = colorize_jobs(plan.jobs, colorizer, config)
    for r in results:
        summary.add(r)
        if on_result is not None:
            on_result(r)
    summary.seconds = time.perf_counter() - start
    return summary


__all__ = [
    "COLOUR_MESSAGE",
    "ColorSettings",
    "ColorizeConfig",
    "Colorizer",
    "FileResult",
    "Job",
    "Plan",
    "Summary",
    "colorize_jobs",
    "colorize_paths",
    "detect_legacy",
    "lab_to_rgb_image",
    "luminance",
    "output_record",
    "plan_colorize",
    "restore_luminance",
]
