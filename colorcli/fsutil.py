"""Atomic file writes: a hidden temporary file in the destination folder, then ``os.replace``.

A reader never sees a partial file under the final name, and a failure (exception or
KeyboardInterrupt) removes the temporary file. This module imports nothing from colorcli, so
every layer (``color/`` included) may use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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
