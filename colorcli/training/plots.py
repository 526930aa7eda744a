"""Pictures of a training run, drawn with Pillow (no matplotlib): the loss curves and a grid of
sample colorizations (gray | prediction | truth per row). Both are written atomically as PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from colorcli.color.lab import lab_to_rgb
from colorcli.plotting import BACKGROUND, GRID, INK, load_font, save_png_atomic

SERIES_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def log_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick *values* for a log axis spanning [10**lo, 10**hi]: 1, 2, 5 x 10^k (every
    mantissa 1-9 when that gives too few), and for a span under a factor of about 3 the round
    values of a linear axis (3.4, 3.5, 3.6), so that labels never read 6.30957."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    vlo, vhi = 10.0**lo, 10.0**hi
    if hi <= lo:
        return [vlo]
    for mantissas in ((1.0, 2.0, 5.0), tuple(float(m) for m in range(1, 10))):
        ticks = [
            round(m * 10.0**k, 12)
            for k in range(math.floor(lo) - 1, math.ceil(hi) + 1)
            for m in mantissas
            if vlo * (1 - 1e-9) <= m * 10.0**k <= vhi * (1 + 1e-9)
        ]
        if len(ticks) > target * 2:  # many decades: keep the powers of ten
            ticks = [t for t in ticks if math.isclose(math.log10(t), round(math.log10(t)))]
        if len(ticks) >= 3:
            return ticks
    return [t for t in nice_ticks(vlo, vhi, target) if t > 0]


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.1e}"
    return f"{v:g}"


def loss_curve_image(
    series: dict[str, Sequence[tuple[float, float]]],
    *,
    title: str = "loss",
    size: tuple[int, int] = (720, 420),
    log_y: bool = True,
) -> Image.Image:
    """Line plot of named ``(step, value)`` series on shared axes (log y when all values > 0).

    Non-finite values are skipped; a series with a single point is drawn as a dot.
    """
    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    img = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(img)
    font = load_font(13)
    clean = {
        name: [(float(s), float(v)) for s, v in pts if math.isfinite(v) and math.isfinite(s)]
        for name, pts in series.items()
    }
    values = [v for pts in clean.values() for _, v in pts]
    steps = [s for pts in clean.values() for s, _ in pts]
    draw.text((width / 2, 12), title, fill=INK, font=load_font(15), anchor="mt")
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    draw.rectangle([x0, y0, x1, y1], outline=INK)
    if not values:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "no data yet", fill=INK, font=font, anchor="mm")
        return img
    use_log = log_y and min(values) > 0

    def ty(v: float) -> float:
        return math.log10(v) if use_log else v

    vlo, vhi = min(ty(v) for v in values), max(ty(v) for v in values)
    if vhi - vlo < 1e-12:
        vlo, vhi = vlo - 0.5, vhi + 0.5
    pad = 0.05 * (vhi - vlo)
    vlo, vhi = vlo - pad, vhi + pad
    slo, shi = min(steps), max(steps)
    if shi <= slo:
        slo, shi = slo - 1, shi + 1

    def px(s: float) -> float:
        return x0 + (s - slo) / (shi - slo) * (x1 - x0)

    def py(v: float) -> float:
        return y1 - (ty(v) - vlo) / (vhi - vlo) * (y1 - y0)

    for t in log_ticks(vlo, vhi) if use_log else nice_ticks(vlo, vhi):
        y = py(t)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((x0 - 6, y), _fmt(t), fill=INK, font=font, anchor="rm")
    for t in nice_ticks(slo, shi):
        x = px(t)
        draw.line([(x, y1), (x, y1 + 4)], fill=INK)
        draw.text((x, y1 + 7), _fmt(t), fill=INK, font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, height - 14), "step", fill=INK, font=font, anchor="mm")
    for i, (name, pts) in enumerate(clean.items()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        xy = [(px(s), py(v)) for s, v in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy if len(xy) <= 50 else xy[-1:]:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)
        ly = y0 + 10 + 16 * i
        draw.line([(x1 - 120, ly), (x1 - 100, ly)], fill=colour, width=3)
        draw.text((x1 - 95, ly), name, fill=INK, font=font, anchor="lm")
    return img


def save_loss_curve(
    path: str | Path, series: dict[str, Sequence[tuple[float, float]]], *, title: str = "loss"
) -> Path:
    """Draw ``loss_curve_image`` and save it atomically as PNG."""
    return save_png_atomic(loss_curve_image(series, title=title), path)


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8."""
    arr = rgb.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return np.asarray(np.rint(arr * 255.0), dtype=np.uint8)


SAMPLE_COLUMNS = ("gray", "prediction", "truth")
HEADER = 20
"""Height in pixels of the column labels above a sample grid."""


def sample_grid_image(
    lum: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor, *, gap: int = 4
) -> Image.Image:
    """One row per image under the column labels: gray input | prediction | truth.

    ``lum`` ``(B, 1, H, W)`` in [0, 100]; ``pred_ab``, ``true_ab`` ``(B, 2, H, W)`` in Lab units.
    """
    if lum.dim() != 4 or lum.shape[1] != 1:
        raise ValueError(f"lum must be (B, 1, H, W), got {tuple(lum.shape)}")
    if pred_ab.shape != true_ab.shape or pred_ab.shape[0] != lum.shape[0]:
        raise ValueError("pred_ab and true_ab must be (B, 2, H, W) matching lum")
    b, _, h, w = lum.shape
    lum = lum.float().cpu()
    zeros = torch.zeros(b, 2, h, w)
    panels = [
        lab_to_rgb(torch.cat([lum, zeros], dim=1)),
        lab_to_rgb(torch.cat([lum, pred_ab.float().cpu()], dim=1)),
        lab_to_rgb(torch.cat([lum, true_ab.float().cpu()], dim=1)),
    ]
    grid = Image.new("RGB", (3 * w + 4 * gap, HEADER + b * h + (b + 1) * gap), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = load_font(12)
    for col, label in enumerate(SAMPLE_COLUMNS):
        centre = gap + col * (w + gap) + w / 2
        draw.text((centre, HEADER / 2 + gap / 2), label, fill=INK, font=font, anchor="mm")
    for row in range(b):
        for col, panel in enumerate(panels):
            tile = Image.fromarray(_to_uint8(panel[row]), "RGB")
            grid.paste(tile, (gap + col * (w + gap), HEADER + gap + row * (h + gap)))
    return grid


def save_sample_grid(
    path: str | Path, lum: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor
) -> Path:
    """Draw ``sample_grid_image`` and save it atomically as PNG."""
    return save_png_atomic(sample_grid_image(lum, pred_ab, true_ab), path)
