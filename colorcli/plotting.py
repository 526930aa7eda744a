"""Drawing primitives shared by the Pillow figures (``plots``, ``report_plots`` and
``training.plots``): the font loader, the common colours and the atomic PNG save."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFont

from colorcli.fsutil import atomic_write

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (228, 228, 228)

SYSTEM_FONTS = ("DejaVuSans.ttf", "Arial.ttf")


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


def save_png_atomic(img: Image.Image, path: str | Path) -> Path:
    """Save ``img`` as PNG at ``path`` (folders created) through a hidden temp file in the same
    folder + os.replace; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
