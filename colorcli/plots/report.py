"""Report figures drawn with Pillow and numpy (no matplotlib): the cumulative ab-accuracy curves
of every model (plain and rebalanced, two panels), a contact sheet of best/worst images by AuC and
a sheet of the images a realism critic finds least real.

``*_image`` return the figures; ``*_png`` return them as PNG bytes (the caller writes them
atomically, or ``save_png`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw

from colorcli.plots._draw import GRID, Font, canvas, load_font, png_bytes, text_size

# Distinct, colour-blind-friendly line colours (Okabe-Ito, then a few extra).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
    (150, 150, 150),
    (120, 60, 20),
    (100, 40, 160),
)
BASELINE_COLOURS = {"gray": (130, 130, 130), "random": (230, 159, 0), "ground-truth": (0, 0, 0)}


def font(size: int) -> Font:
    """Pillow's bundled scalable font at ``size`` px (bitmap fallback on very old Pillow)."""
    return load_font(size, bundled=True)


def _png(img: Image.Image) -> bytes:
    return png_bytes(img, optimize=True)


def model_colours(models: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A fixed colour per model: baselines keep theirs, other models take the palette in order."""
    out: dict[str, tuple[int, int, int]] = {}
    k = 0
    for m in models:
        if m in BASELINE_COLOURS:
            out[m] = BASELINE_COLOURS[m]
        else:
            out[m] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _panel(
    img: Image.Image,
    box: tuple[int, int, int, int],
    title: str,
    series: Sequence[tuple[str, np.ndarray, tuple[int, int, int], float | None]],
) -> None:
    """One accuracy-vs-threshold panel in ``box`` (x0, y0, x1, y1): axes, ticks, grid, legend."""
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(img)
    f_title, f_axis, f_tick = font(18), font(15), font(13)
    left, right, top, bottom = x0 + 70, x1 - 20, y0 + 45, y1 - 60
    tw, _ = text_size(draw, title, f_title)
    draw.text(((x0 + x1 - tw) // 2, y0 + 10), title, fill=(0, 0, 0), font=f_title)

    def px(t: float) -> float:
        return left + (right - left) * t / 150.0

    def py(v: float) -> float:
        return bottom - (bottom - top) * v

    # grid and ticks
    for t in range(0, 151, 25):
        x = px(t)
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.line([(x, bottom), (x, bottom + 5)], fill=(0, 0, 0))
        w, _ = text_size(draw, str(t), f_tick)
        draw.text((x - w / 2, bottom + 8), str(t), fill=(0, 0, 0), font=f_tick)
    for i in range(6):
        v = i / 5
        y = py(v)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.line([(left - 5, y), (left, y)], fill=(0, 0, 0))
        label = f"{v:.1f}"
        w, h = text_size(draw, label, f_tick)
        draw.text((left - 9 - w, y - h / 2 - 2), label, fill=(0, 0, 0), font=f_tick)
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    xl = "threshold on the ab distance (Lab units)"
    w, _ = text_size(draw, xl, f_axis)
    draw.text(((left + right - w) / 2, bottom + 30), xl, fill=(0, 0, 0), font=f_axis)
    # vertical y label: draw on a small image and rotate
    yl = "fraction of pixels within threshold"
    w, h = text_size(draw, yl, f_axis)
    tmp = Image.new("RGBA", (w + 4, h + 8), (255, 255, 255, 0))
    ImageDraw.Draw(tmp).text((2, 0), yl, fill=(0, 0, 0, 255), font=f_axis)
    rot = tmp.rotate(90, expand=True)
    img.paste(rot, (x0 + 8, int((top + bottom - rot.height) / 2)), rot)

    for _name, curve, colour, _ in series:
        pts = [(px(t), py(float(v))) for t, v in enumerate(curve)]
        draw.line(pts, fill=colour, width=3)

    # legend, lower right, inside the axes
    rows = [
        (f"{name}  ({score:.1f}%)" if score is not None else name, colour)
        for name, _, colour, score in series
    ]
    if rows:
        f_leg = font(14)
        lw = max(text_size(draw, r, f_leg)[0] for r, _ in rows) + 50
        lh = 22 * len(rows) + 10
        lx1, ly1 = right - 10, bottom - 10
        lx0, ly0 = lx1 - lw, ly1 - lh
        draw.rectangle([lx0, ly0, lx1, ly1], fill=(255, 255, 255), outline=(120, 120, 120))
        for k, (text, colour) in enumerate(rows):
            yy = ly0 + 8 + 22 * k
            draw.line([(lx0 + 8, yy + 9), (lx0 + 36, yy + 9)], fill=colour, width=3)
            draw.text((lx0 + 42, yy), text, fill=(0, 0, 0), font=f_leg)


def auc_curve_png(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    scores: Mapping[str, Mapping[str, float]],
    panel_size: tuple[int, int] = (700, 560),
) -> bytes:
    """``auc_curve_image`` as PNG bytes."""
    return _png(auc_curve_image(curves, scores, panel_size))


def auc_curve_image(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    scores: Mapping[str, Mapping[str, float]],
    panel_size: tuple[int, int] = (700, 560),
) -> Image.Image:
    """Two panels (plain and rebalanced) of cumulative accuracy vs threshold 0..150, one line per
    model, with a legend giving each model's AuC. ``curves[model]["plain"|"rebalanced"]`` are
    151-long sequences in [0, 1]; ``scores[model]["auc"|"auc_rebal"]`` the AuC in percent."""
    models = list(curves)
    colours = model_colours(models)
    panels = [
        ("plain", "auc", "Raw accuracy (AuC)"),
        ("rebalanced", "auc_rebal", "Class-rebalanced accuracy (AuC rebal)"),
    ]
    shown = [p for p in panels if any(p[0] in curves[m] for m in models)]
    pw, ph = panel_size
    img, _ = canvas((pw * max(1, len(shown)), ph))
    for k, (key, score_key, title) in enumerate(shown):
        series = [
            (
                m,
                np.asarray(curves[m][key], dtype=np.float64),
                colours[m],
                scores.get(m, {}).get(score_key),
            )
            for m in models
            if key in curves[m]
        ]
        _panel(img, (k * pw, 0, (k + 1) * pw, ph), title, series)
    return img


class ContactItem(Protocol):
    score: float
    path: Path
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray]


def contact_sheet_png(
    groups: Sequence[tuple[str, Sequence[Any], Sequence[Any]]], gap: int = 6
) -> bytes:
    """``contact_sheet_image`` as PNG bytes."""
    return _png(contact_sheet_image(groups, gap))


def contact_sheet_image(
    groups: Sequence[tuple[str, Sequence[Any], Sequence[Any]]], gap: int = 6
) -> Image.Image:
    """Per model, its best and worst images by AuC side by side; rows: input gray / prediction /
    truth. ``groups``: ``(model, best, worst)`` where each item has ``score``, ``path`` and
    ``tiles`` (three equal ``(T, T, 3)`` uint8 arrays)."""
    return _tile_sheet(
        [
            (
                f"{model}: best {len(best)} (left) and worst {len(worst)} (right) by AuC",
                [best, worst],
            )
            for model, best, worst in groups
        ],
        lambda score: f"AuC {score:.1f}%",
        gap,
    )


def worst_realism_png(groups: Sequence[tuple[str, Sequence[Any]]], gap: int = 6) -> bytes:
    """``worst_realism_image`` as PNG bytes."""
    return _png(worst_realism_image(groups, gap))


def worst_realism_image(groups: Sequence[tuple[str, Sequence[Any]]], gap: int = 6) -> Image.Image:
    """Per model, the images a critic finds least real (lowest realism first), drawn like the
    contact sheet: rows input gray / prediction / truth, captions the realism score.
    ``groups``: ``(model, items)`` with items as for ``contact_sheet_png``."""
    return _tile_sheet(
        [
            (f"{model}: the {len(items)} least real-looking by the critic", [items])
            for model, items in groups
        ],
        lambda score: f"realism {score:.3f}",
        gap,
    )


def _tile_sheet(
    groups: Sequence[tuple[str, Sequence[Sequence[Any]]]],
    caption: Callable[[float], str],
    gap: int,
) -> Image.Image:
    """Blocks of thumbnails: per group a heading and one or more sides of items (separated by a
    vertical line), each item a column of three tiles with its caption and file name."""
    f_head, f_lab, f_cap = font(17), font(14), font(12)
    first = next((items[0] for _, sides in groups for items in sides if items), None)
    if first is None:
        raise ValueError("nothing to draw on the contact sheet")
    tile = first.tiles[0].shape[0]
    label_w, head_h, cap_h, sep = 100, 30, 34, 24
    k = max(len(items) for _, sides in groups for items in sides)
    n_sides = max(len(sides) for _, sides in groups)
    width = label_w + n_sides * k * (tile + gap) + (n_sides - 1) * sep + 10
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(width, *(text_size(probe, heading, f_head)[0] + 20 for heading, _ in groups))
    block_h = head_h + 3 * (tile + gap) + cap_h + 12
    img, draw = canvas((width, block_h * len(groups) + 10))
    for g, (heading, sides) in enumerate(groups):
        y0 = 5 + g * block_h
        draw.text((8, y0 + 6), heading, fill=(0, 0, 0), font=f_head)
        for r, name in enumerate(("input (L)", "prediction", "truth")):
            yy = y0 + head_h + r * (tile + gap) + tile // 2 - 8
            draw.text((8, yy), name, fill=(60, 60, 60), font=f_lab)
        for side, items in enumerate(sides):
            for c, item in enumerate(items):
                x = label_w + side * (k * (tile + gap) + sep) + c * (tile + gap)
                for r in range(3):
                    y = y0 + head_h + r * (tile + gap)
                    img.paste(Image.fromarray(np.asarray(item.tiles[r], dtype=np.uint8)), (x, y))
                cy = y0 + head_h + 3 * (tile + gap)
                draw.text((x, cy), caption(item.score), fill=(0, 0, 0), font=f_cap)
                name = Path(item.path).name
                if len(name) > 18:
                    name = name[:8] + "…" + name[-9:]
                draw.text((x, cy + 15), name, fill=(90, 90, 90), font=f_cap)
        if g:
            draw.line([(0, y0 - 3), (width, y0 - 3)], fill=(200, 200, 200))
        for side in range(1, len(sides)):
            xs = label_w + side * k * (tile + gap) + (side - 1) * sep + sep // 2 - gap // 2
            ys = (y0 + head_h, y0 + head_h + 3 * (tile + gap))
            draw.line([(xs, ys[0]), (xs, ys[1])], fill=(200, 200, 200))
    return img
