"""Formats and atomic writing: the format of an output from its extension, ``write_image``
(through a hidden temporary file in the destination folder and ``os.replace``, so a reader never
sees a partial file; 16-bit, alpha, EXIF, ICC and PNG colour chunks kept where the format
allows), the cleaning of a killed run's temporary files, and the output record."""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, PngImagePlugin

from colorcli import fsutil
from colorcli.errors import ColorcliError, UsageError
from colorcli.imageio.decode import _to_uint16, icc_color_space, to_uint8
from colorcli.imageio.guard import _open_header

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
        kwargs = _pillow_save_kwargs(
            fmt, quality, alpha is not None, exif, icc, png_chunks, record, opts
        )
        if fmt in ("BMP", "JPEG2000") and (exif or icc):
            notes.append(f"EXIF/ICC not written ({fmt} output)")

        def write(tmp: Path) -> None:
            img.save(tmp, format=fmt, **kwargs)

    atomic_write(path, write)
    if record is not None and not sidecar:
        record_sidecar(path).unlink(missing_ok=True)  # one left by an earlier run in another format
    return notes


def _pillow_save_kwargs(
    fmt: str,
    quality: int,
    has_alpha: bool,
    exif: bytes | None,
    icc: bytes | None,
    png_chunks: list[tuple[bytes, bytes]],
    record: str | None,
    opts: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments of Pillow's ``save`` for an 8-bit output in ``fmt``."""
    kwargs: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if fmt == "WEBP" and has_alpha:
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
    return kwargs


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
