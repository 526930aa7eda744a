"""Pictures of the ab plane drawn with Pillow, numpy and OpenCV (no matplotlib).

``plot_bins``: the quantized gamut, each bin a square in its own colour at L = 50 (Zhang et al.,
figure 2). ``plot_rebalance``: the prior (log scale) and the rebalancing weights side by side,
each with a colour bar. ``bins_image`` and ``rebalance_image`` return the figures; ``plot_bins``
and ``plot_rebalance`` write them as PNG (atomically) and return the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorcli.color.bins import infer_grid, validate_bins
from colorcli.plots._draw import (
    INK,
    MANTISSAS_1_2_25_5,
    Font,
    canvas,
    centered_text,
    fmt_tick,
    load_font,
    nice_ticks,
    save_png,
)

GRID_LINE = (225, 225, 225)
EMPTY_CELL = (205, 205, 205)
PANEL_PX = 480
MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM = 62, 52, 56


def colormap(name: str = "viridis") -> np.ndarray:
    """A ``(256, 3)`` uint8 RGB lookup table of an OpenCV colormap (viridis, magma, ...)."""
    import cv2

    code = getattr(cv2, f"COLORMAP_{name.upper()}")
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), code)
    return np.ascontiguousarray(lut[:, 0, ::-1])


def ab_colours(bins: np.ndarray, lightness: float = 50.0) -> np.ndarray:
    """``(Q, 3)`` uint8 sRGB colour of each bin centre at the given L (clipped into gamut)."""
    import torch

    from colorcli.color.lab import lab_to_rgb

    lab = torch.zeros(3, len(bins), 1, dtype=torch.float64)
    lab[0] = lightness
    lab[1:, :, 0] = torch.from_numpy(np.asarray(bins, dtype=np.float64)).T
    rgb = lab_to_rgb(lab)[:, :, 0].T.numpy()
    return np.asarray(np.rint(rgb * 255.0), dtype=np.uint8)


@dataclass(frozen=True)
class _Frame:
    """Maps ab units to pixels inside a square panel whose top-left corner is (x0, y0)."""

    x0: int
    y0: int
    lo: float
    hi: float
    px: int

    def x(self, a: float) -> float:
        return self.x0 + (a - self.lo) / (self.hi - self.lo) * self.px

    def y(self, b: float) -> float:  # b grows upwards
        return self.y0 + (self.hi - b) / (self.hi - self.lo) * self.px


def _ab_extent(bins: np.ndarray, grid: float) -> tuple[float, float]:
    lo = float(bins.min()) - grid
    hi = float(bins.max()) + grid
    half = max(abs(lo), abs(hi))
    step = grid * 2
    half = math.ceil(half / step) * step
    return -half, half


def _ticks(lo: float, hi: float, target: int) -> list[float]:
    return nice_ticks(lo, hi, target, mantissas=MANTISSAS_1_2_25_5, snap=False)


def _fmt(v: float) -> str:
    return fmt_tick(v, big=1e4, small=0.0, digits=0)


def _draw_axes(draw: ImageDraw.ImageDraw, fr: _Frame, font: Font) -> None:
    x1, y1 = fr.x0 + fr.px, fr.y0 + fr.px
    for t in _ticks(fr.lo, fr.hi, 8):
        x, y = fr.x(t), fr.y(t)
        draw.line([(x, y1), (x, y1 + 5)], fill=INK, width=1)
        draw.text((x, y1 + 8), _fmt(t), fill=INK, font=font, anchor="mt")
        draw.line([(fr.x0 - 5, y), (fr.x0, y)], fill=INK, width=1)
        draw.text((fr.x0 - 8, y), _fmt(t), fill=INK, font=font, anchor="rm")
    draw.rectangle([fr.x0, fr.y0, x1, y1], outline=INK, width=1)
    centered_text(draw, (fr.x0 + fr.px / 2, y1 + 36), "a", font)
    centered_text(draw, (fr.x0 - 46, fr.y0 + fr.px / 2), "b", font)


def _draw_gridlines(draw: ImageDraw.ImageDraw, fr: _Frame) -> None:
    for t in _ticks(fr.lo, fr.hi, 8):
        draw.line([(fr.x(t), fr.y0), (fr.x(t), fr.y0 + fr.px)], fill=GRID_LINE, width=1)
        draw.line([(fr.x0, fr.y(t)), (fr.x0 + fr.px, fr.y(t))], fill=GRID_LINE, width=1)


def _draw_cells(
    draw: ImageDraw.ImageDraw, fr: _Frame, bins: np.ndarray, grid: float, colours: np.ndarray
) -> None:
    h = grid / 2.0
    for (a, b), c in zip(bins, colours, strict=True):
        box = [fr.x(a - h), fr.y(b + h), fr.x(a + h) - 1, fr.y(b - h) - 1]
        draw.rectangle(box, fill=tuple(int(v) for v in c))


def _colourbar(
    draw: ImageDraw.ImageDraw,
    img: Image.Image,
    x0: int,
    y0: int,
    height: int,
    vmin: float,
    vmax: float,
    lut: np.ndarray,
    label: str,
    font: Font,
    log: bool,
) -> None:
    """A vertical colour bar with ticks; ``log`` means values are log10 and ticks show 10^k."""
    width = 16
    ramp = np.linspace(1.0, 0.0, height)[:, None].repeat(width, axis=1)
    bar = lut[np.rint(ramp * 255).astype(np.int64)]
    img.paste(Image.fromarray(bar, "RGB"), (x0, y0))
    draw.rectangle([x0, y0, x0 + width, y0 + height], outline=INK, width=1)
    span = vmax - vmin if vmax > vmin else 1.0

    def ypos(v: float) -> float:
        return y0 + (vmax - v) / span * height

    if log:
        mults = (1.0,) if vmax - vmin >= 2 else (1.0, 2.0, 5.0)
        ticks = [
            math.log10(m) + k
            for k in range(math.floor(vmin), math.ceil(vmax) + 1)
            for m in mults
            if vmin - 1e-9 <= math.log10(m) + k <= vmax + 1e-9
        ]
        if len(ticks) < 2:
            ticks = [vmin, vmax]
        labels = [f"{10**t:.2g}" for t in ticks]
    else:
        ticks = _ticks(vmin, vmax, 5)
        labels = [f"{t:.3g}" for t in ticks]
    for t, lab in zip(ticks, labels, strict=True):
        y = ypos(t)
        draw.line([(x0 + width, y), (x0 + width + 4, y)], fill=INK, width=1)
        draw.text((x0 + width + 7, y), lab, fill=INK, font=font, anchor="lm")
    draw.text((x0 + width / 2, y0 - 10), label, fill=INK, font=font, anchor="md")


def _png_path(path: str | Path) -> Path:
    """``path`` with ``.png`` appended unless it already ends in .png (any case)."""
    path = Path(path)
    return path if path.suffix.lower() == ".png" else path.with_name(path.name + ".png")


def bins_image(
    bins: np.ndarray, *, title: str | None = None, lightness: float = 50.0
) -> Image.Image:
    """Draw ``bins`` ``(Q, 2)`` as squares of the grid size, each filled with its own ab colour at
    L = ``lightness``; a horizontal, b vertical, ticks in ab units."""
    validate_bins(bins)
    grid = infer_grid(bins)
    lo, hi = _ab_extent(bins, grid)
    width = MARGIN_LEFT + PANEL_PX + 30
    height = MARGIN_TOP + PANEL_PX + MARGIN_BOTTOM
    img, draw = canvas((width, height))
    fr = _Frame(MARGIN_LEFT, MARGIN_TOP, lo, hi, PANEL_PX)
    _draw_gridlines(draw, fr)
    _draw_cells(draw, fr, bins, grid, ab_colours(bins, lightness))
    small, big = load_font(13), load_font(17)
    _draw_axes(draw, fr, small)
    heading = (
        title or f"Quantized ab gamut: Q = {len(bins)} bins, grid {grid:g}, at L = {lightness:g}"
    )
    centered_text(draw, (width / 2, MARGIN_TOP / 2), heading, big)
    return img


def plot_bins(
    bins: np.ndarray, path: str | Path, *, title: str | None = None, lightness: float = 50.0
) -> Path:
    """``bins_image`` written as PNG atomically (``.png`` appended to ``path`` unless it has it);
    returns the path written."""
    return save_png(bins_image(bins, title=title, lightness=lightness), _png_path(path))


def _value_colours(values: np.ndarray, lut: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((values - vmin) / span, 0.0, 1.0)
    return lut[np.rint(t * 255).astype(np.int64)]


def rebalance_image(
    bins: np.ndarray, prior: np.ndarray, weights: np.ndarray, *, title: str | None = None
) -> Image.Image:
    """Two panels on the ab plane: the prior ``(Q,)`` on a log10 colour scale (bins with no pixel
    drawn grey) and the weights ``(Q,)`` (log scale when they span more than 50x)."""
    validate_bins(bins)
    prior = np.asarray(prior, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if prior.shape != (len(bins),) or weights.shape != (len(bins),):
        raise ValueError("prior and weights must be (Q,) arrays matching the bins")
    grid = infer_grid(bins)
    lo, hi = _ab_extent(bins, grid)
    panel_w = MARGIN_LEFT + PANEL_PX + 110
    width, height = 2 * panel_w + 10, MARGIN_TOP + 30 + PANEL_PX + MARGIN_BOTTOM
    img, draw = canvas((width, height))
    small, big = load_font(13), load_font(17)
    lut = colormap("viridis")
    top = MARGIN_TOP + 30

    seen = prior > 0
    logp = np.log10(np.where(seen, prior, 1.0))
    pmin = float(logp[seen].min()) if seen.any() else -1.0
    pmax = float(logp[seen].max()) if seen.any() else 0.0
    colours = _value_colours(logp, lut, pmin, pmax)
    colours[~seen] = EMPTY_CELL

    wpos = weights[weights > 0]
    wlog = bool(wpos.size and wpos.max() / wpos.min() > 50)
    wv = np.log10(np.clip(weights, wpos.min() if wpos.size else 1.0, None)) if wlog else weights
    wmin, wmax = float(wv.min()), float(wv.max())
    panels = [
        ("prior p (log scale; grey: no pixels)", colours, pmin, pmax, "p", True),
        (
            "rebalancing weights w" + (" (log scale)" if wlog else ""),
            _value_colours(wv, lut, wmin, wmax),
            wmin,
            wmax,
            "w",
            wlog,
        ),
    ]
    for i, (name, cols, vmin, vmax, label, log) in enumerate(panels):
        fr = _Frame(i * panel_w + MARGIN_LEFT, top, lo, hi, PANEL_PX)
        _draw_gridlines(draw, fr)
        _draw_cells(draw, fr, bins, grid, cols)
        _draw_axes(draw, fr, small)
        centered_text(draw, (fr.x0 + PANEL_PX / 2, top - 16), name, small)
        _colourbar(
            draw, img, fr.x0 + PANEL_PX + 18, top + 20, PANEL_PX - 40, vmin, vmax, lut, label,
            small, log,
        )  # fmt: skip
    heading = title or f"ab prior and class-rebalancing weights (Q = {len(bins)})"
    centered_text(draw, (width / 2, MARGIN_TOP / 2), heading, big)
    return img


def plot_rebalance(
    bins: np.ndarray,
    prior: np.ndarray,
    weights: np.ndarray,
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """``rebalance_image`` written as PNG atomically (``.png`` appended to ``path`` unless it has
    it); returns the path written."""
    return save_png(rebalance_image(bins, prior, weights, title=title), _png_path(path))
