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


def test_check_writable_accepts_new_and_existing(tmp_path: Path) -> None:
    fsutil.check_writable(tmp_path)
    fsutil.check_writable(tmp_path / "new" / "deeper")  # created later, under a writable parent
    fsutil.check_writable(tmp_path / "file.npy", folder=False)
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []  # the probe is gone


def test_check_writable_refuses_files_in_the_way(tmp_path: Path) -> None:
    from colorcli.errors import UsageError

    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder") as info:
        fsutil.check_writable(tmp_path / "f")
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        fsutil.check_writable(tmp_path / "f" / "sub")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        fsutil.check_writable(tmp_path / "f" / "out.npz", folder=False)


def test_check_writable_refuses_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from colorcli.errors import UsageError

    real_open = open

    def deny(file: object, *args: object, **kwargs: object) -> object:
        if ".colorcli-write-probe" in str(file):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(UsageError, match=r"cannot write to .*Permission denied"):
        fsutil.check_writable(tmp_path / "out")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root ignores permission bits")
def test_check_writable_read_only_folder(tmp_path: Path) -> None:
    from colorcli.errors import UsageError

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UsageError, match="cannot write"):
            fsutil.check_writable(ro / "out")
    finally:
        ro.chmod(0o755)
