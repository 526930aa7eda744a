"""colorcli.fsutil: atomic writes through a hidden temp file + os.replace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from colorcli import fsutil


def test_hidden_temp_is_beside_and_hidden(tmp_path: Path) -> None:
    tmp = fsutil.hidden_temp(tmp_path / "a.bin")
    assert tmp.parent == tmp_path and tmp.name == f".a.bin.{os.getpid()}.tmp"


@pytest.mark.parametrize("fsync", [False, True])
def test_atomic_open_replaces_and_leaves_no_temp(tmp_path: Path, fsync: bool) -> None:
    final = tmp_path / "f.bin"
    final.write_bytes(b"old")
    with fsutil.atomic_open(final, fsync=fsync) as fh:
        fh.write(b"new")
        assert final.read_bytes() == b"old"  # not visible before the block ends
    assert final.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_atomic_open_failure_keeps_old_file(tmp_path: Path) -> None:
    final = tmp_path / "f.bin"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError), fsutil.atomic_open(final) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert final.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_atomic_write_custom_temp_and_failure(tmp_path: Path) -> None:
    final = tmp_path / "g.txt"
    seen: list[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("hello")

    custom = tmp_path / ".g.custom"
    assert fsutil.atomic_write(final, write, tmp=custom) == final
    assert seen == [custom] and final.read_text() == "hello"

    def crash(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_write(final, crash)
    assert final.read_text() == "hello"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.txt"]
