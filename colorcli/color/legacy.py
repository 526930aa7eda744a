"""Old photographs: is a picture a monochrome scan (``detect_legacy``), and the restoration of
its lightness (``restore_luminance``: non-local-means denoising, CLAHE). Pure numpy/OpenCV on
arrays; torch-free."""

from __future__ import annotations

import cv2
import numpy as np

from colorcli.color.lab_np import lab_float64

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


def thumbnail(pixels: np.ndarray, side: int) -> np.ndarray:
    """``pixels`` ``(H, W[, C])`` shrunk (area average, aspect kept) so that the long side is
    at most ``side``; the dtype is kept. Smaller images come back at their size."""
    h, w = pixels.shape[:2]
    scale = min(1.0, side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _to_float_rgb(pixels: np.ndarray) -> np.ndarray:
    peak = 255.0 if pixels.dtype == np.uint8 else 65535.0
    arr = pixels.astype(np.float32) / np.float32(peak)
    return arr if arr.ndim == 3 else np.repeat(arr[..., None], 3, axis=2)


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
    lab = lab_float64(_to_float_rgb(thumbnail(pixels, _TINT_SIDE)))
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


__all__ = [
    "CLAHE_TILES",
    "TINT_OFF_HUE_MAX",
    "TINT_RESIDUAL_MAX",
    "detect_legacy",
    "restore_luminance",
    "thumbnail",
]
