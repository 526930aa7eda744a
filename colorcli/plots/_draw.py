"""Drawing primitives shared by every figure (``ab_plane``, ``report``, ``training``): the font
loader, the common colours, a blank canvas, text helpers, the tick algorithm, the tick-label
formatter, PNG encoding and the one atomic save."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from colorcli.fsutil import atomic_write

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (228, 228, 228)

SYSTEM_FONTS = ("DejaVuSans.ttf", "Arial.ttf")

#: Tick-step mantissas: the ab-plane figures also allow 2.5 (steps of 25 on the ab axes), the
#: training curves do not.
MANTISSAS_125 = (1.0, 2.0, 5.0)
MANTISSAS_1_2_25_5 = (1.0, 2.0, 2.5, 5.0)


def load_font(size: int, *, bundled: bool = False) -> Font:
    """A scalable font at ``size`` px: DejaVu Sans or Arial when installed (unless ``bundled``),
    else Pillow's bundled font (a bitmap one on Pillow < 10.1)."""
    if not bundled:
        for name in SYSTEM_FONTS:
            try:
                return ImageFont.truetype(name, size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def canvas(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A blank RGB image of ``size`` (width, height) on BACKGROUND, and a pen for it."""
    img = Image.new("RGB", size, BACKGROUND)
    return img, ImageDraw.Draw(img)


def centered_text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Font
) -> None:
    """``text`` in INK centred on ``xy`` (both ways)."""
    draw.text(xy, text, fill=INK, font=font, anchor="mm")


def text_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[int, int]:
    """Width and height in px of ``text``'s ink box."""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return int(x1 - x0), int(y1 - y0)


def nice_step(
    span: float, target: int = 6, mantissas: Sequence[float] = MANTISSAS_1_2_25_5
) -> float:
    """A round tick step (a mantissa times a power of ten) giving about ``target`` ticks."""
    raw = span / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (*mantissas, 10.0):
        if m * mag >= raw:
            return m * mag
    return 10.0 * mag


def nice_ticks(
    lo: float,
    hi: float,
    target: int = 5,
    *,
    mantissas: Sequence[float] = MANTISSAS_125,
    snap: bool = True,
) -> list[float]:
    """Round tick values (steps of ``mantissas`` x 10^k) covering [lo, hi].

    ``snap`` (the training curves): a value within 1e-9 of a step counts as on it, ticks are
    rounded to 12 decimals, non-finite ends give no ticks and an empty range gives ``[lo]``.
    Without it (the ab-plane figures, whose images must not change): the plain loop from
    ``ceil(lo / step) * step`` to ``hi + 1e-9``, an empty range taking the step of a span of 1.
    """
    if snap:
        if not math.isfinite(lo) or not math.isfinite(hi):
            return []
        if hi <= lo:
            return [lo]
        step = nice_step(hi - lo, target, mantissas)
        t = math.ceil(lo / step - 1e-9) * step
        end = hi + 1e-9 * step
    else:
        step = nice_step(hi - lo if hi > lo else 1.0, target, mantissas)
        t = math.ceil(lo / step) * step
        end = hi + 1e-9
    ticks = []
    while t <= end:
        ticks.append(round(t, 12) if snap else t)
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


def fmt_tick(v: float, *, big: float = 1e5, small: float = 1e-3, digits: int = 1) -> str:
    """A tick label: ``{v:g}``, or scientific with ``digits`` decimals when ``|v| >= big`` or
    ``0 < |v| < small`` (the ab plane uses big=1e4, small=0, digits=0)."""
    if v != 0 and (abs(v) >= big or abs(v) < small):
        return f"{v:.{digits}e}"
    return f"{v:g}"


def png_bytes(img: Image.Image, *, optimize: bool = False) -> bytes:
    """``img`` encoded as PNG."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=optimize)
    return buf.getvalue()


def save_png(img: Image.Image, path: str | Path) -> Path:
    """The one save path of every figure: ``img`` as PNG at ``path`` (folders created), through a
    hidden temp file in the same folder + os.replace; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
