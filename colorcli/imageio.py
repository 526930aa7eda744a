"""Reading and writing images: discovery, decoding with EXIF orientation, modes, bit depth,
metadata, atomic writes.

Everything a user can feed us goes through here, so every failure becomes a ``BadImage`` whose
message names the file and the problem in one line.

Two readers exist: the light ``open_image``/``read_rgb`` (float RGB for training and evaluation)
and ``read_image``, which keeps everything needed to write a faithful output: native bit depth
(8 or 16 bits; Pillow cannot hold 16-bit RGB, so 16-bit PNG/TIFF are decoded with OpenCV),
alpha, format, EXIF and ICC profile. ``write_image`` writes through a hidden temporary file in
the destination folder and ``os.replace``, so a reader never sees a partial file.

Over 500 lines on purpose: every per-format rule of reading and writing (guard, orientation,
depth, metadata, the output record) lives in this one place so that no caller re-learns them.
"""

from __future__ import annotations

import glob
import io
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from colorcli import fsutil
from colorcli.errors import BadImage, ColorcliError, UsageError


def _readable_extensions() -> frozenset[str]:
    from PIL import features

    exts = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".bmp", ".dib", ".gif"}
    if features.check("webp"):
        exts.add(".webp")
    if features.check("jpg_2000"):
        exts.update({".jp2", ".j2k", ".jpx"})
    return frozenset(exts)


#: Every extension found by folder scans and globs: the formats this Pillow build decodes (GIF
#: and animations give their first frame). Explicitly named files are tried whatever their name.
IMAGE_EXTENSIONS = _readable_extensions()


def is_image_path(path: Path) -> bool:
    """True for a file whose extension is one of IMAGE_EXTENSIONS (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def iter_folder_images(folder: Path, ignored: list[Path] | None = None) -> Iterator[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files and folders skipped).

    Other (non-hidden) files are appended to ``ignored`` when a list is given.
    """
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if is_image_path(p):
            yield p
        elif ignored is not None:
            ignored.append(p)


def _glob_base(pattern: str) -> Path:
    """The longest leading part of a glob pattern without magic characters (a folder)."""
    parts = Path(pattern).parts
    base: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def find_images_with_roots(
    inputs: Iterable[str | Path], ignored: list[Path] | None = None
) -> list[tuple[Path, Path]]:
    """Like ``find_images`` but each file comes with its path relative to the input it came from.

    A folder argument gives paths relative to that folder (``photos/a/b.jpg`` from ``photos`` ->
    ``a/b.jpg``), a glob gives paths relative to its non-magic leading folder, an explicit file
    gives its bare name. Writers use this to keep the sub-folder layout in an output folder.
    Files of folders that are not images (by extension) are appended to ``ignored`` if given.
    """
    seen: dict[Path, Path] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in iter_folder_images(p, ignored):
                seen.setdefault(f, f.relative_to(p))
        elif p.is_file():
            seen.setdefault(p, Path(p.name))
        elif glob.has_magic(str(item)):
            base = _glob_base(str(item))
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            files = [m for m in matches if m.is_file() and is_image_path(m)]
            for m in matches:
                if m.is_dir():
                    files.extend(iter_folder_images(m, ignored))
            if not files:
                raise UsageError(f"{item}: no image files match this pattern")
            for f in files:
                try:
                    rel = f.relative_to(base)
                except ValueError:
                    rel = Path(f.name)
                seen.setdefault(f, rel)
        else:
            raise UsageError(f"{item}: no such file or folder")
    return list(seen.items())


def find_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders (recursive) and glob patterns into a sorted, de-duplicated list.

    A folder yields only files with image extensions; an explicitly named file is kept whatever
    its extension (so that a bad file is reported rather than silently ignored). A missing path
    that is not a matching glob raises UsageError.
    """
    return [f for f, _ in find_images_with_roots(inputs)]


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


# --------------------------------------------------------------------------------------------
# Faithful reading and atomic writing (used by colorize)

#: Pillow format name -> the extension used when writing that format.
FORMAT_EXTENSIONS: dict[str, str] = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "JPEG2000": ".jp2",
}
#: Readable formats that are not written: their outputs are PNG (a GIF's 256-colour palette
#: would throw the colorized result away).
WRITE_INSTEAD: dict[str, str] = {".gif": ".png"}
_EXTENSION_FORMATS: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".jp2": "JPEG2000",
    ".j2k": "JPEG2000",
    ".jpx": "JPEG2000",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".dib": "BMP",
}
_ORIENTATION = 0x0112
# Descriptive baseline-TIFF tags that may travel from a TIFF's IFD0 into an output's EXIF; the
# structural ones (strips, sizes, compression...) describe the source file and must not.
_TIFF_DESCRIPTIVE_TAGS = (270, 271, 272, 274, 305, 306, 315, 33432)
_TIFF_WRITABLE_COMPRESSION = frozenset(
    {"raw", "tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"}
)
TEMP_MARKER = ".colorcli-tmp"
_TEMP_RE = re.compile(r"^\..*\.(\d+)-\d+" + re.escape(TEMP_MARKER))
_temp_counter = iter(range(1, 2**62))
_temp_lock = threading.Lock()


def format_for_path(path: str | Path) -> str:
    """Pillow format name for a file name's extension; UsageError for unknown extensions."""
    ext = Path(path).suffix.lower()
    try:
        return _EXTENSION_FORMATS[ext]
    except KeyError:
        raise UsageError(
            f"{path}: cannot tell the image format from the extension {ext!r} "
            f"(use one of {', '.join(sorted(_EXTENSION_FORMATS))})"
        ) from None


def format_for_extension(suffix: str) -> str | None:
    """Pillow format name for an extension such as ".JPG" (None when unknown)."""
    return _EXTENSION_FORMATS.get(suffix.lower())


@dataclass
class DecodedImage:
    """A decoded, upright image with everything needed to write a faithful output.

    ``pixels``: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB, ``uint8`` or ``uint16`` (the native
    bit depth of the file). ``alpha``: ``(H, W)`` of the same dtype, or None. ``exif`` has its
    orientation reset to 1 since the pixels are already rotated.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    format: str | None = None
    mode: str = ""
    exif: bytes | None = None
    icc_profile: bytes | None = None
    save_options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what reading dropped (other frames...)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to ``(H, W, ...)`` pixels, as ``ImageOps.exif_transpose``."""
    if orientation == 2:
        out = arr[:, ::-1]
    elif orientation == 3:
        out = arr[::-1, ::-1]
    elif orientation == 4:
        out = arr[::-1]
    elif orientation == 5:
        out = arr.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(arr, k=-1)
    elif orientation == 7:
        out = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(arr, k=1)
    else:
        return arr
    return np.ascontiguousarray(out)


def _exif_bytes(raw: Image.Image) -> bytes | None:
    try:
        exif = raw.getexif()
    except Exception:  # a broken EXIF block must not cost the picture
        return None
    if raw.format == "TIFF":
        kept = Image.Exif()
        for tag in _TIFF_DESCRIPTIVE_TAGS:
            if tag in exif:
                kept[tag] = exif[tag]
        exif = kept
    if len(exif) == 0:
        return None
    original = exif.get(_ORIENTATION)
    try:
        if original is not None:
            exif[_ORIENTATION] = 1  # the cached Exif object: restored below for exif_transpose
        return exif.tobytes()
    except Exception:
        return None
    finally:
        if original is not None:
            exif[_ORIENTATION] = original


def _orientation(raw: Image.Image) -> int:
    try:
        return int(raw.getexif().get(_ORIENTATION, 1))
    except Exception:
        return 1


def _png_colour_chunks(info: dict[Any, Any]) -> list[tuple[bytes, bytes]]:
    """A PNG's cHRM, gAMA and sRGB chunks (payloads rebuilt exactly from Pillow's parsed values),
    so that outputs describe their colours as the input did."""
    chunks: list[tuple[bytes, bytes]] = []
    try:
        chroma = info.get("chromaticity")
        if chroma is not None and len(chroma) == 8:
            chunks.append((b"cHRM", struct.pack(">8I", *(round(v * 100000) for v in chroma))))
        gamma = info.get("gamma")
        if gamma is not None:
            chunks.append((b"gAMA", struct.pack(">I", round(gamma * 100000))))
        intent = info.get("srgb")
        if intent is not None:
            chunks.append((b"sRGB", bytes([int(intent)])))
    except (TypeError, ValueError, struct.error):  # a malformed chunk is dropped, not fatal
        return []
    return chunks


def _save_options(raw: Image.Image) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    dpi = raw.info.get("dpi")
    if dpi is not None:
        opts["dpi"] = dpi
    if raw.format == "PNG":
        chunks = _png_colour_chunks(raw.info)
        if chunks:
            opts["png_chunks"] = chunks
    if raw.format == "TIFF":
        comp = raw.info.get("compression")
        opts["compression"] = comp if comp in _TIFF_WRITABLE_COMPRESSION else "tiff_lzw"
    return opts


def _is_high_depth(raw: Image.Image) -> bool:
    """True for images Pillow would truncate or cannot hold: 16-bit RGB(A), 16/32-bit gray."""
    if raw.mode.startswith("I;16") or raw.mode in ("I", "F"):
        return True
    for tile in getattr(raw, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and re.search(r";16", rawmode):
            return True
    return False


def _to_uint16(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint16:
        return arr
    if arr.dtype == np.uint8:
        return arr.astype(np.uint16) * 257
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    return np.clip(arr, 0, 65535).astype(np.uint16)


def _decode_high_depth(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit (and 32-bit gray) PNG/TIFF through OpenCV, which keeps every bit. RGB order."""
    arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise BadImage(f"{path}: cannot decode image (truncated or corrupt 16-bit file)")
    arr = _to_uint16(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return arr, None
    channels = arr.shape[2]
    if channels == 2:
        return np.ascontiguousarray(arr[..., 0]), np.ascontiguousarray(arr[..., 1])
    if channels == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), None
    return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB), np.ascontiguousarray(arr[..., 3])


def _cmyk_to_rgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK -> RGB through the file's own ICC profile when there is one (as image editors do),
    else Pillow's naive conversion."""
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(
                img, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if out is not None:
                return out
        except Exception:
            pass
    return img.convert("RGB")


def _pil_to_arrays(img: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    if mode == "L":
        return np.asarray(img), None
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return np.ascontiguousarray(la[..., 0]), np.ascontiguousarray(la[..., 1])
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode == "CMYK":
        img, mode = _cmyk_to_rgb(img, icc), "RGB"
    if mode in ("RGBA", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img), None


def _frame_notes(raw: Image.Image) -> list[str]:
    """A note when an animation (GIF, APNG, WebP) or a multi-page TIFF has more than the one
    frame that is read. MPO (camera JPEGs with a preview frame) says nothing."""
    try:
        n = int(getattr(raw, "n_frames", 1))
    except Exception:
        return []
    if n <= 1 or raw.format == "MPO":
        return []
    what = "pages" if raw.format == "TIFF" else "frames"
    return [f"only the first of {n} {what} was used (the other {n - 1} were dropped)"]


def read_image(path: str | Path, max_pixels: int | None = None) -> DecodedImage:
    """Decode ``path`` upright (EXIF orientation applied) at its native bit depth.

    Grayscale stays ``(H, W)``; palette, CMYK (through its ICC profile), YCbCr... become RGB;
    alpha (RGBA, LA, palette transparency) is split off. 16-bit PNG/TIFF are read with OpenCV
    since Pillow cannot hold 16-bit RGB. ``max_pixels`` is the decompression-bomb limit (None:
    Pillow's default). Raises BadImage naming the file and the problem.
    """
    path = Path(path)
    _check_file(path)
    try:
        raw = open_guarded(path, max_pixels)
        with raw:
            high_depth = _is_high_depth(raw)  # before getexif(), which may decode a PNG
            fmt = raw.format
            icc = raw.info.get("icc_profile")
            exif = _exif_bytes(raw)
            opts = _save_options(raw)
            mode = raw.mode
            notes = _frame_notes(raw)
            if high_depth:
                orientation = _orientation(raw)
                pixels, alpha = _decode_high_depth(path)
                pixels = orient_array(pixels, orientation)
                alpha = None if alpha is None else orient_array(alpha, orientation)
                mode = f"{mode} (16-bit)"
            else:
                raw.load()
                img = ImageOps.exif_transpose(raw)
                pixels, alpha = _pil_to_arrays(img, icc)
                del img
    except UnidentifiedImageError as exc:
        raise BadImage(f"{path}: not an image file (or a format Pillow cannot read)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, cv2.error) as exc:
        raise BadImage(f"{path}: cannot decode image ({exc})") from exc
    return DecodedImage(
        pixels=pixels,
        alpha=alpha,
        format=fmt,
        mode=mode,
        exif=exif,
        icc_profile=icc if isinstance(icc, bytes) and icc else None,
        save_options=opts,
        notes=notes,
    )


def icc_color_space(profile: bytes | None) -> str | None:
    """The data colour space signature of an ICC profile ("RGB", "GRAY", "CMYK"...), or None."""
    if not profile or len(profile) < 20:
        return None
    return profile[16:20].decode("ascii", errors="replace").strip()


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 with rounding (65535 -> 255); uint8 unchanged."""
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def temp_path_for(path: Path) -> Path:
    """A hidden temporary name beside ``path`` (same folder, so ``os.replace`` is atomic), with
    the same extension (encoders choose the format by it). Our pid is in the name so a later
    run can tell a dead run's leftovers from a live one's."""
    with _temp_lock:
        n = next(_temp_counter)
    return path.with_name(f".{path.stem}.{os.getpid()}-{n}{TEMP_MARKER}{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it onto
    ``path``. A failure (or a kill) never leaves a partial file under the final name."""
    path = Path(path)
    fsutil.atomic_write(path, write, tmp=temp_path_for(path))


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def clean_temp_files(folder: str | Path, max_age_s: float = 24 * 3600) -> int:
    """Delete temporary files that a killed earlier run left below ``folder``; return how many.

    A temp file is stale when the process named in it is gone (or, where that cannot be checked,
    when it is older than ``max_age_s``); a concurrent live run's files are left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    now = time.time()
    for p in folder.rglob(f".*{TEMP_MARKER}*"):
        m = _TEMP_RE.match(p.name)
        if m is None or not p.is_file():
            continue
        pid = int(m.group(1))
        if pid == os.getpid():
            continue
        stale = not _pid_alive(pid) or (now - p.stat().st_mtime > max_age_s and os.name == "nt")
        if stale:
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png_add_metadata(
    data: bytes,
    exif: bytes | None,
    icc: bytes | None,
    chunks: Iterable[tuple[bytes, bytes]] = (),
    record: str | None = None,
) -> bytes:
    """Insert colour (cHRM/gAMA/sRGB), iCCP, eXIf and the record's tEXt chunks right after IHDR
    of an encoded PNG (OpenCV writes none of them). sRGB is left out beside an ICC profile, as
    the PNG specification asks (and Pillow does)."""
    ihdr_end = 8 + 8 + 13 + 4
    extra = b"".join(_png_chunk(k, v) for k, v in chunks if not (icc and k == b"sRGB"))
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif:
        raw_exif = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", raw_exif)
    if record is not None:
        extra += _png_chunk(b"tEXt", RECORD_KEY.encode() + b"\x00" + record.encode("latin-1"))
    return data[:ihdr_end] + extra + data[ihdr_end:]


# The record: what made an output (model and settings, a short ASCII JSON string), so that a
# rerun can tell its own outputs from ones made otherwise. PNG: a tEXt chunk "colorcli"; JPEG
# and WebP: the EXIF UserComment; BMP, JPEG 2000 and TIFF (libtiff cannot write an EXIF
# sub-IFD beside its compression, 16-bit TIFF goes through OpenCV): a hidden sidecar file
# ``.NAME.colorcli.json`` beside the output.
RECORD_KEY = "colorcli"
_USER_COMMENT = 0x9286
_ASCII_PREFIX = b"ASCII\x00\x00\x00"
_EXIF_RECORD_FORMATS = frozenset({"JPEG", "WEBP"})


def record_sidecar(path: Path) -> Path:
    """The hidden file holding the record of an output whose format has no metadata."""
    return path.with_name(f".{path.name}.{RECORD_KEY}.json")


def _exif_with_record(exif: bytes | None, record: str) -> bytes:
    kept = Image.Exif()
    if exif:
        kept.load(exif)
    kept.get_ifd(ExifTags.IFD.Exif)[_USER_COMMENT] = _ASCII_PREFIX + record.encode("ascii")
    return kept.tobytes()


def read_record(path: str | Path) -> str | None:
    """The record ``write_image`` stored with ``path``, or None (none, or unreadable)."""
    path = Path(path)
    try:
        with _open_header(path) as im:
            text = im.info.get(RECORD_KEY)
            if isinstance(text, str):
                return text
            if im.format in _EXIF_RECORD_FORMATS:
                raw = im.getexif().get_ifd(ExifTags.IFD.Exif).get(_USER_COMMENT)
                if isinstance(raw, bytes) and raw.startswith(_ASCII_PREFIX):
                    return raw[len(_ASCII_PREFIX) :].decode("ascii", errors="replace")
    except Exception:  # an unreadable output has no record; planning treats it as made otherwise
        pass
    try:
        return record_sidecar(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    format: str | None = None,
    quality: int = 95,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    save_options: dict[str, Any] | None = None,
    record: str | None = None,
) -> list[str]:
    """Write ``(H, W, 3)`` RGB or ``(H, W)`` gray pixels (uint8 or uint16) atomically.

    ``format`` is a Pillow format name (default: from the extension). 16-bit stays 16-bit in PNG
    and TIFF (through OpenCV; PNG also gets the EXIF and ICC chunks); other formats get 8 bits.
    Alpha is kept except in JPEG. Only RGB ICC profiles are attached (a source's CMYK or gray
    profile would be wrong for RGB pixels); a PNG source's cHRM/gAMA/sRGB chunks (in
    ``save_options["png_chunks"]``) go into PNG outputs. ``record`` (ASCII) is stored as described
    at ``RECORD_KEY`` and read back by ``read_record``. Returns notes on anything not kept.
    """
    path = Path(path)
    fmt = (format or format_for_path(path)).upper()
    notes: list[str] = []
    if alpha is not None and fmt == "JPEG":
        alpha = None
        notes.append("alpha dropped (JPEG has no transparency)")
    if pixels.dtype == np.uint16 and fmt not in ("PNG", "TIFF"):
        pixels = to_uint8(pixels)
        alpha = None if alpha is None else to_uint8(alpha)
        notes.append(f"reduced to 8 bits ({fmt} has no 16-bit mode)")
    if alpha is not None and alpha.dtype != pixels.dtype:
        alpha = _to_uint16(alpha) if pixels.dtype == np.uint16 else to_uint8(alpha)
    want_icc = pixels.ndim == 3 and icc_color_space(icc_profile) == "RGB"
    icc = icc_profile if want_icc else None
    opts = dict(save_options or {})
    png_chunks: list[tuple[bytes, bytes]] = list(opts.pop("png_chunks", []) or [])
    sidecar = fmt in ("BMP", "JPEG2000", "TIFF")
    if record is not None and fmt in _EXIF_RECORD_FORMATS and not sidecar:
        exif = _exif_with_record(exif, record)
    if record is not None and sidecar:  # before the image: an output never lacks its record
        text = record
        fsutil.atomic_write(record_sidecar(path), lambda tmp: tmp.write_text(text, "utf-8"))

    if pixels.dtype == np.uint16:
        data = _encode_high_depth(pixels, alpha, fmt, opts)
        if fmt == "PNG":
            data = _png_add_metadata(data, exif, icc, png_chunks, record)
        elif exif or icc:
            notes.append("EXIF/ICC not written (16-bit TIFF is written with OpenCV)")

        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

    else:
        channels = [pixels] if alpha is None else [pixels, alpha]
        if alpha is None:
            img = Image.fromarray(pixels)
        elif pixels.ndim == 2:
            img = Image.fromarray(np.dstack(channels), "LA")
        else:
            img = Image.fromarray(np.dstack(channels), "RGBA")
        kwargs: dict[str, Any] = {}
        if fmt in ("JPEG", "WEBP"):
            kwargs["quality"] = int(quality)
        if fmt == "WEBP" and alpha is not None:
            kwargs["exact"] = True  # keep the colour under transparent pixels
        if fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            if exif:
                kwargs["exif"] = exif
            if icc:
                kwargs["icc_profile"] = icc
        if fmt == "PNG" and (png_chunks or record is not None):
            info = PngImagePlugin.PngInfo()
            for kind, payload in png_chunks:
                info.add(kind, payload)
            if record is not None:
                info.add_text(RECORD_KEY, record)
            kwargs["pnginfo"] = info
        if "dpi" in opts and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
            kwargs["dpi"] = opts["dpi"]
        if fmt == "TIFF":
            kwargs["compression"] = opts.get("compression", "tiff_lzw")
        if fmt in ("BMP", "JPEG2000") and (exif or icc):
            notes.append(f"EXIF/ICC not written ({fmt} output)")

        def write(tmp: Path) -> None:
            img.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write)
    if record is not None and not sidecar:
        record_sidecar(path).unlink(missing_ok=True)  # one left by an earlier run in another format
    return notes


def _encode_high_depth(
    pixels: np.ndarray, alpha: np.ndarray | None, fmt: str, opts: dict[str, Any]
) -> bytes:
    if pixels.ndim == 2:
        arr = pixels if alpha is None else cv2.merge([pixels, pixels, pixels, alpha])
    elif alpha is None:
        arr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    else:
        arr = cv2.merge([pixels[..., 2], pixels[..., 1], pixels[..., 0], alpha])
    params: list[int] = []
    if fmt == "TIFF":
        comp = {"raw": 1, "packbits": 32773, "tiff_lzw": 5}.get(opts.get("compression", ""), 5)
        params = [cv2.IMWRITE_TIFF_COMPRESSION, comp]
    ok, buf = cv2.imencode(".png" if fmt == "PNG" else ".tif", arr, params)
    if not ok:
        raise ColorcliError(f"OpenCV could not encode a 16-bit {fmt} image")
    return bytes(buf)


def decoded_from_array(array: np.ndarray) -> DecodedImage:
    """Wrap an in-memory array as a DecodedImage: ``(H, W)``, ``(H, W, 1|2|3|4)`` (gray, gray +
    alpha, RGB, RGBA); uint8 and uint16 kept, bool -> uint8, float taken in [0, 1] -> uint16."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        arr = _to_uint16(arr)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise UsageError(f"image arrays must be uint8, uint16 or float in [0, 1], got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        return DecodedImage(np.ascontiguousarray(arr), mode="array")
    if arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        raise UsageError(f"image arrays must be (H, W) or (H, W, 1-4), got shape {arr.shape}")
    if arr.shape[2] == 2:
        return DecodedImage(
            np.ascontiguousarray(arr[..., 0]), np.ascontiguousarray(arr[..., 1]), mode="array"
        )
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[2] == 4 else None
    return DecodedImage(np.ascontiguousarray(arr[..., :3]), alpha, mode="array")


def decoded_from_pil(img: Image.Image) -> DecodedImage:
    """Wrap an in-memory Pillow image (EXIF orientation applied) as a DecodedImage."""
    upright = ImageOps.exif_transpose(img)
    if upright.mode.startswith("I;16") or upright.mode in ("I", "F"):
        pixels = _to_uint16(np.asarray(upright))
        return DecodedImage(pixels, mode=img.mode, format=img.format)
    pixels, alpha = _pil_to_arrays(upright, img.info.get("icc_profile"))
    return DecodedImage(pixels, alpha, format=img.format, mode=img.mode)
