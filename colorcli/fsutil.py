"""Atomic file writes: a hidden temporary file in the destination folder, then ``os.replace``.

A reader never sees a partial file under the final name, and a failure (exception or
KeyboardInterrupt) removes the temporary file. ``check_writable`` refuses an unwritable output
before any work is done. ``atomic_torch_save`` is the one atomic ``torch.save`` (torch is
imported when it is called), ``file_sha256`` the one file digest (training, the ONNX twins). This
module imports only ``colorcli.errors``, so every layer (``color/`` included) may use it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from colorcli.errors import UsageError


def hidden_temp(path: Path) -> Path:
    """``.{name}.{pid}.tmp`` beside ``path``: same folder (so ``os.replace`` is atomic), hidden,
    and named by our pid so that concurrent processes never share one."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(
    path: str | Path, write: Callable[[Path], object], *, tmp: Path | None = None
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path`` (``hidden_temp(path)`` unless
    ``tmp`` is given), then rename it onto ``path``; returns ``path``. On any failure the
    temporary file is removed and the error propagates; ``path`` is left as it was."""
    path = Path(path)
    tmp = hidden_temp(path) if tmp is None else tmp
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_open(
    path: str | Path, *, fsync: bool = False, tmp: Path | None = None
) -> Iterator[BinaryIO]:
    """``with atomic_open(path) as fh: ...`` writes binary data to a temporary file (as
    ``atomic_write``) that replaces ``path`` when the block ends without error. ``fsync`` flushes
    the data to disk before the rename."""
    path = Path(path)
    tmp = hidden_temp(path) if tmp is None else tmp
    try:
        with open(tmp, "wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, ``os.replace``): a SIGKILL
    at any moment leaves the previous file or the new one, never a torn one; returns ``path``."""
    import torch

    path = Path(path)
    with atomic_open(path, fsync=True) as fh:
        torch.save(obj, fh)
    return path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_writable(path: str | Path, *, folder: bool = True) -> None:
    """Refuse early (before any expensive work) an output that cannot be written.

    ``path`` is an output folder (``folder=True``; it may not exist yet: then its nearest
    existing parent must be a writable folder, since it will be created there) or an output
    file (its folder is checked). The check writes and removes a hidden probe file, which is
    what counts (permission bits do not tell about read-only mounts, ACLs or root). Raises
    UsageError (exit 2) with one line naming the path.
    """
    path = Path(path)
    target = path if folder else path.parent
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{path}: is a file, not a folder; choose an output folder")
    existing = target if str(target) else Path(".")
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot write {path}: {existing} is a file, not a folder")
    probe = existing / f".colorcli-write-probe.{os.getpid()}"
    try:
        with open(probe, "wb"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = "" if existing == target else f" (its parent {existing} is not writable)"
        raise UsageError(f"cannot write to {path}{where}: {reason}") from None
    else:
        probe.unlink(missing_ok=True)
