"""Pictures of a training run, drawn with Pillow (no matplotlib): the loss curves and a grid of
sample colorizations (gray | prediction | truth per row). ``*_image`` return the figures,
``save_*`` write them as PNG atomically."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorcli.color.lab import lab_to_rgb
from colorcli.plots._draw import (
    GRID,
    INK,
    canvas,
    centered_text,
    fmt_tick,
    load_font,
    log_ticks,
    nice_ticks,
    save_png,
)

SERIES_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


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
    img, draw = canvas(size)
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
        centered_text(draw, ((x0 + x1) / 2, (y0 + y1) / 2), "no data yet", font)
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
        draw.text((x0 - 6, y), fmt_tick(t), fill=INK, font=font, anchor="rm")
    for t in nice_ticks(slo, shi):
        x = px(t)
        draw.line([(x, y1), (x, y1 + 4)], fill=INK)
        draw.text((x, y1 + 7), fmt_tick(t), fill=INK, font=font, anchor="mt")
    centered_text(draw, ((x0 + x1) / 2, height - 14), "step", font)
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
    return save_png(loss_curve_image(series, title=title), path)


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
    grid, draw = canvas((3 * w + 4 * gap, HEADER + b * h + (b + 1) * gap))
    font = load_font(12)
    for col, label in enumerate(SAMPLE_COLUMNS):
        centre = gap + col * (w + gap) + w / 2
        centered_text(draw, (centre, HEADER / 2 + gap / 2), label, font)
    for row in range(b):
        for col, panel in enumerate(panels):
            tile = Image.fromarray(_to_uint8(panel[row]), "RGB")
            grid.paste(tile, (gap + col * (w + gap), HEADER + gap + row * (h + gap)))
    return grid


def save_sample_grid(
    path: str | Path, lum: torch.Tensor, pred_ab: torch.Tensor, true_ab: torch.Tensor
) -> Path:
    """Draw ``sample_grid_image`` and save it atomically as PNG."""
    return save_png(sample_grid_image(lum, pred_ab, true_ab), path)
