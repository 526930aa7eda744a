"""Reading images: discovery of image files, decoding with EXIF orientation, mode handling.

Everything a user can feed us goes through here, so every failure becomes a ``BadImage`` whose
message names the file and the problem in one line.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from colorcli.errors import BadImage, UsageError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dib"}
)


def is_image_path(path: Path) -> bool:
    """True for a file whose extension is one of IMAGE_EXTENSIONS (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def iter_folder_images(folder: Path) -> Iterator[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files and folders skipped)."""
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and is_image_path(p):
            yield p


def find_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders (recursive) and glob patterns into a sorted, de-duplicated list.

    A folder yields only files with image extensions; an explicitly named file is kept whatever
    its extension (so that a bad file is reported rather than silently ignored). A missing path
    that is not a matching glob raises UsageError.
    """
    seen: dict[Path, None] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in iter_folder_images(p):
                seen.setdefault(f, None)
        elif p.is_file():
            seen.setdefault(p, None)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file() and is_image_path(m)]
            for m in matches:
                if m.is_dir():
                    files.extend(iter_folder_images(m))
            if not files:
                raise UsageError(f"{item}: no image files match this pattern")
            for f in files:
                seen.setdefault(f, None)
        else:
            raise UsageError(f"{item}: no such file or folder")
    return list(seen)


def open_image(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode ``path`` with Pillow, applying the EXIF orientation.

    ``max_pixels`` raises or lowers Pillow's decompression-bomb limit for this call (None keeps
    Pillow's default guard). Raises BadImage naming the file for anything unreadable.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise BadImage(f"{path}: empty file (0 bytes)")
    except FileNotFoundError as exc:
        raise BadImage(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise BadImage(f"{path}: is a folder, not an image") from exc
    old_limit = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        raw = Image.open(path)
        raw.load()
        img = ImageOps.exif_transpose(raw)
    except Image.DecompressionBombError as exc:
        raise BadImage(
            f"{path}: image is too large for the decompression-bomb guard ({exc}); "
            "raise the limit with --max-pixels if you trust this file"
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(f"{path}: not an image file (or a format Pillow cannot read)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{path}: cannot decode image ({exc})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
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


def read_rgb(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Read ``path`` as ``(H, W, 3)`` float32 sRGB in [0, 1], oriented by EXIF.

    With ``max_side``, the image is shrunk (JPEG: at decode time via Pillow's draft mode, which is
    much faster) so that its longer side is at most ``max_side`` pixels.
    """
    path = Path(path)
    if max_side is not None:
        try:
            with Image.open(path) as probe:
                if probe.format == "JPEG":
                    probe.draft("RGB", (max_side, max_side))
                    probe.load()
                    img = ImageOps.exif_transpose(probe)
                    return pil_to_rgb_float(_shrink(img, max_side))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            pass  # fall through to the full path, which reports the problem properly
    return pil_to_rgb_float(_shrink(open_image(path), max_side))
