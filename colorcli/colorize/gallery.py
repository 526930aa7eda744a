"""The review gallery of a colorize batch: ``OUT/index.html``, one self-contained page.

``write_gallery(summary, out_dir)`` makes two small JPEG thumbnails per output (the input as it
was, "before", and the result, "after"; long side ``THUMB_SIDE``) under ``OUT/.gallery/``, then
fills the page template (``colorcli/assets/gallery.html``, package data) with the batch as one
JSON blob and writes ``OUT/index.html`` atomically. The page needs no server and loads nothing
from outside: the thumbnails are linked relatively, so the folder can be moved or zipped whole.

Each output that exists after the batch is shown (done now, or skipped because an earlier run
made it); failed files are listed with their reason, colour photos left alone by name. The page
draws its cards in chunks as the reader scrolls and its images load lazily, so a batch of
thousands of photos opens at once. A thumbnail is remade only when it is older than its file,
so the page of a resumed batch costs little. Under torchrun each rank makes the thumbnails of
its own files (``make_thumbnails``) before rank 0 writes the page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from colorcli import imageio
from colorcli.errors import ColorcliError
from colorcli.fsutil import atomic_open

if TYPE_CHECKING:
    from colorcli.colorize.run import FileResult, Summary

#: Long side of the thumbnails in pixels (two per image, about 20-40 KB each at ``QUALITY``).
THUMB_SIDE = 480
QUALITY = 82
#: Folder of the thumbnails inside OUT (hidden; a later colorize never takes it as input).
THUMB_DIR = ".gallery"
PAGE_NAME = "index.html"
FORMAT = "colorcli-gallery"
VERSION = 1


@dataclass(frozen=True)
class GalleryItem:
    """One output shown on the page; ``before``/``after`` are thumbnail paths (None: the file
    could not be read for a preview) and ``width``/``height`` the thumbnail size."""

    source: Path
    output: Path
    status: str  # "done", or the skip reason of an output an earlier run made
    legacy: str | None
    before: Path | None
    after: Path | None
    width: int
    height: int


def thumb_paths(output: Path, out_dir: Path) -> tuple[Path, Path]:
    """Where the before/after thumbnails of ``output`` go: ``OUT/.gallery/REL.before.jpg``."""
    rel = _relative(output, out_dir)
    base = out_dir / THUMB_DIR / rel
    return base.with_name(base.name + ".before.jpg"), base.with_name(base.name + ".after.jpg")


def shown(results: Iterable[FileResult]) -> list[FileResult]:
    """The results that have an output to show (made now or by an earlier run), by output."""
    keep = [
        r
        for r in results
        if r.status == "done" or (r.status == "skipped" and r.skip in ("exists", "other-settings"))
    ]
    return sorted(keep, key=lambda r: str(r.output))


def _fresh(thumb: Path, of: Path) -> bool:
    try:
        return thumb.stat().st_mtime >= of.stat().st_mtime
    except OSError:
        return False


def _thumbnail(image: Path, thumb: Path, max_pixels: int | None) -> tuple[int, int] | None:
    """Write (or reuse) the thumbnail of ``image``; its (width, height), None if unreadable."""
    try:
        if _fresh(thumb, image):
            with Image.open(thumb) as im:
                return im.size
        rgb = imageio.read_rgb(image, max_side=THUMB_SIDE, max_pixels=max_pixels)
        pixels = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        thumb.parent.mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(pixels, "RGB")
        imageio.atomic_write(thumb, lambda tmp: pil.save(tmp, "JPEG", quality=QUALITY))
        return pil.size
    except (ColorcliError, OSError, ValueError):
        return None


def _item(result: FileResult, out_dir: Path, max_pixels: int | None) -> GalleryItem:
    before, after = thumb_paths(result.output, out_dir)
    after_size = _thumbnail(result.output, after, max_pixels)
    before_size = _thumbnail(result.source, before, max_pixels)
    width, height = after_size or before_size or (THUMB_SIDE, THUMB_SIDE * 3 // 4)
    return GalleryItem(
        result.source,
        result.output,
        "done" if result.status == "done" else result.skip,
        result.legacy,
        before if before_size else None,
        after if after_size else None,
        width,
        height,
    )


def make_thumbnails(
    results: Iterable[FileResult],
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 4,
    max_pixels: int | None = None,
) -> list[GalleryItem]:
    """Thumbnails of every shown result (``shown``), on ``workers`` threads; the items in output
    order. Unreadable files give items without that preview, never an error."""
    out = Path(out_dir)
    todo = shown(results)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="colorcli-thumb") as pool:
        return list(pool.map(lambda r: _item(r, out, max_pixels), todo))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path.absolute(), root.absolute())).as_posix()


def _url(path: Path | None, out_dir: Path) -> str:
    """A relative URL from OUT/index.html (percent-encoded: spaces, '#', '%' in file names)."""
    return "" if path is None else quote(_relative(path, out_dir))


def page_data(
    summary: Summary,
    items: Sequence[GalleryItem],
    out_dir: str | os.PathLike[str],
    *,
    model: str = "default",
    created: str | None = None,
) -> dict[str, Any]:
    """The page's JSON blob: summary counts, the shown images, failures and colour photos.

    Source paths are absolute (the downloaded "wrong" list is re-run from anywhere); output and
    thumbnail URLs are relative to ``out_dir``.
    """
    out = Path(out_dir)
    return {
        "format": FORMAT,
        "version": VERSION,
        "outDir": str(out.absolute()),
        "model": model,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": {
            "done": summary.done,
            "skipped": summary.skipped,
            "failed": summary.failed,
            "legacy": summary.legacy,
            "seconds": round(summary.seconds, 3),
            "shown": len(items),
        },
        "images": [
            {
                "name": _relative(it.output, out),
                "src": str(it.source.absolute()),
                "out": _url(it.output, out),
                "before": _url(it.before, out),
                "after": _url(it.after, out),
                "w": it.width,
                "h": it.height,
                "status": it.status,
                "legacy": it.legacy or "",
            }
            for it in items
        ],
        "failed": [
            {"src": str(r.source.absolute()), "reason": r.message}
            for r in sorted(summary.results, key=lambda r: str(r.source))
            if r.status == "failed"
        ],
        "colour": [str(p.absolute()) for p in sorted(summary.skipped_for("colour"))],
    }


def _script_json(obj: object) -> str:
    """JSON safe inside a <script> element: no '</script>', '<!--' or U+2028/9 line breaks."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def template() -> str:
    """The page template (package data ``colorcli/assets/gallery.html``)."""
    return resources.files("colorcli").joinpath("assets/gallery.html").read_text("utf-8")


def build_page(data: dict[str, Any]) -> str:
    """The whole page: the template with the JSON blob (``page_data``) in place."""
    return template().replace("@@DATA@@", _script_json(data))


def write_gallery(
    summary: Summary,
    out_dir: str | os.PathLike[str],
    *,
    model: str = "default",
    workers: int = 4,
    max_pixels: int | None = None,
) -> Path:
    """Thumbnails (made or reused) and ``OUT/index.html`` (written atomically); its path."""
    out = Path(out_dir)
    items = make_thumbnails(summary.results, out, workers=workers, max_pixels=max_pixels)
    page = build_page(page_data(summary, items, out, model=model))
    out.mkdir(parents=True, exist_ok=True)
    path = out / PAGE_NAME
    with atomic_open(path) as fh:
        fh.write(page.encode("utf-8"))
    return path


__all__ = [
    "GalleryItem",
    "build_page",
    "make_thumbnails",
    "page_data",
    "shown",
    "thumb_paths",
    "write_gallery",
]
