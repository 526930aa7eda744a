"""Finding image files: folder scans, globs and explicit files, in a stable order."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from pathlib import Path

from colorcli.errors import UsageError


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
