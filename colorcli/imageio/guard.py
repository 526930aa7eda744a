"""Guarded opening (the decompression-bomb guard, applied from the header before any decoding)
and the light reader: ``open_image`` / ``read_rgb`` give float RGB oriented by EXIF, for
training and evaluation."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorcli.errors import BadImage


def _check_file(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            raise BadImage(f"{path}: empty file (0 bytes)")
    except FileNotFoundError as exc:
        raise BadImage(f"{path}: no such file") from exc
    if path.is_dir():
        raise BadImage(f"{path}: is a folder, not an image")


#: Largest image accepted by default, in pixels: where Pillow's own guard refuses a file (twice
#: Pillow's default ``Image.MAX_IMAGE_PIXELS`` of 89,478,485, so about 179 megapixels). A
#: constant on purpose: the guard never reads (or writes) Pillow's process-global setting, which
#: any thread or library may change, so no concurrent reader can switch our guard off.
DEFAULT_MAX_PIXELS = 2 * (1024 * 1024 * 1024 // 4 // 3)


def default_max_pixels() -> int:
    """The pixel count above which images are refused by default (``DEFAULT_MAX_PIXELS``)."""
    return DEFAULT_MAX_PIXELS


def _open_header(path: Path) -> Image.Image:
    """``Image.open`` without Pillow's size check: identify the format and read the header only.

    The same plugin loop as ``Image.open`` (registered formats, accept on the first 16 bytes,
    then the plugin's header parser); pixels are not decoded. Pillow's check is left out because
    it reads the mutable global limit; ``open_guarded`` applies its own before any decoding.
    """
    fp = open(path, "rb")  # noqa: SIM115 - handed to the image, which closes it
    try:
        prefix = fp.read(16)
        Image.preinit()
        tried: set[str] = set()
        for loader in (None, Image.init):
            if loader is not None:
                loader()
            for fmt in [f for f in Image.ID if f not in tried]:
                tried.add(fmt)
                factory, accept = Image.OPEN[fmt]
                try:  # as Image.open: these errors mean "not this format", try the next one
                    ok = not accept or accept(prefix)
                    if not ok or isinstance(ok, str):
                        continue
                    fp.seek(0)
                    im = factory(fp, str(path))
                except (SyntaxError, IndexError, TypeError, struct.error):
                    continue
                im._exclusive_fp = True  # the image owns (and closes) the file, as Image.open
                return im
    except BaseException:
        fp.close()
        raise
    fp.close()
    raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


def open_guarded(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` (header only, nothing decoded yet) and refuse it when its header claims
    more than ``max_pixels`` pixels (None: ``DEFAULT_MAX_PIXELS``): the decompression-bomb guard.

    Every reader of user files goes through here. It is race-free by construction: the limit is
    an argument or a constant, the size is checked from the header before any decoding, and
    Pillow's global setting is never touched (Pillow's own check inside some decoders still
    applies on top). Raises BadImage naming the file; Pillow's own errors propagate.
    """
    path = Path(path)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    raw = _open_header(path)
    n = raw.width * raw.height
    if n > limit:
        raw.close()
        raise BadImage(
            f"{path}: {raw.width}x{raw.height} ({n / 1e6:.0f} megapixels) is above the "
            f"decompression-bomb guard of {limit / 1e6:.0f} megapixels; raise it with "
            "--max-pixels if you trust this file"
        )
    return raw


def open_image(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode ``path`` with Pillow, applying the EXIF orientation.

    ``max_pixels`` is the largest pixel count accepted (the decompression-bomb guard; None keeps
    Pillow's default limit). Raises BadImage naming the file for anything unreadable.
    """
    path = Path(path)
    _check_file(path)
    try:
        raw = open_guarded(path, max_pixels)
        raw.load()
        img = ImageOps.exif_transpose(raw)
    except UnidentifiedImageError as exc:
        raise BadImage(f"{path}: not an image file (or a format Pillow cannot read)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(f"{path}: cannot decode image ({exc})") from exc
    return img


def _shrink(img: Image.Image, max_side: int | None) -> Image.Image:
    if max_side is None or max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def pil_to_rgb_float(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> ``(H, W, 3)`` float32 sRGB in [0, 1]; alpha is dropped.

    16-bit grayscale (modes I;16*, I) is scaled by 65535, float mode F is taken as [0, 1];
    palette, CMYK, LA, YCbCr etc. are converted through Pillow.
    """
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if mode != "I" or arr.max() > 255 else 255.0
        g = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "F":
        g = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(g[..., None], 3, axis=2)
    if mode != "RGB":
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def read_rgb(
    path: str | Path, max_side: int | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Read ``path`` as ``(H, W, 3)`` float32 sRGB in [0, 1], oriented by EXIF.

    With ``max_side``, the image is shrunk (JPEG: at decode time via Pillow's draft mode, which is
    much faster) so that its longer side is at most ``max_side`` pixels. ``max_pixels``: the
    decompression-bomb guard (see ``open_guarded``), applied to the file's full size.
    """
    path = Path(path)
    if max_side is not None:
        try:
            with open_guarded(path, max_pixels) as probe:
                if probe.format == "JPEG":
                    probe.draft("RGB", (max_side, max_side))
                    probe.load()
                    img = ImageOps.exif_transpose(probe)
                    return pil_to_rgb_float(_shrink(img, max_side))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            pass  # fall through to the full path, which reports the problem properly
    return pil_to_rgb_float(_shrink(open_image(path, max_pixels), max_side))
