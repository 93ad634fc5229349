"""Atomic file replacement: all or nothing, permissions kept, links refused."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from compiler import atomicfile
from compiler.atomicfile import write_atomic


def test_writes_new_and_replaces_existing_files(tmp_path: Path) -> None:
    target = tmp_path / "recipe.mecha"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    write_atomic(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.mecha"]


def test_new_files_get_the_umask_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "new.mecha"
    write_atomic(target, b"x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "recipe.mecha"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_atomic(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_failure_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "recipe.mecha"
    target.write_bytes(b"old")

    def broken_replace(source: object, destination: object) -> None:
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(atomicfile.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.mecha"]


def test_the_data_is_synced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(handle: int) -> None:
        events.append("fsync")
        real_fsync(handle)

    def replace(source: str, destination: str) -> None:
        events.append("replace")
        real_replace(source, destination)

    monkeypatch.setattr(atomicfile.os, "fsync", fsync)
    monkeypatch.setattr(atomicfile.os, "replace", replace)
    write_atomic(tmp_path / "recipe.mecha", b"data")
    assert events == ["fsync", "replace", "fsync"]  # the file, the rename, the folder


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.mecha"
    real.write_bytes(b"old")
    link = tmp_path / "link.mecha"
    link.symlink_to(real)
    with pytest.raises(OSError) as info:
        write_atomic(link, b"new")
    assert info.value.errno == errno.ELOOP
    assert real.read_bytes() == b"old" and link.is_symlink()
