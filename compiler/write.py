"""The write stage: a whole ``generated/`` tree, swapped in only when complete (RELIABILITY 8).

The new tree is written into a staging folder beside the old one, flushed to disk, and exchanged
with the old folder in one atomic ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it (two
renames otherwise, with recovery of the old tree at the next run). A failed or killed build leaves
``generated/`` exactly as it was. Paths come from the plan and are checked as names, never
followed through symbolic links.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from compiler.atomicfile import fsync_folder

SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
RENAME_EXCHANGE = 2
AT_FDCWD = -100


class WriteError(Exception):
    """The output could not be written; nothing was changed."""


def check_relative(path: str) -> None:
    """A planned path: relative, forward slashes, each part a plain name (no ``..``)."""
    parts = path.split("/")
    if not parts or any(not SAFE_PART.fullmatch(p) or p in (".", "..") for p in parts):
        raise WriteError(f"refusing to write unsafe path {path!r}")


def write_tree(out_dir: Path, files: Mapping[str, bytes]) -> None:
    """Replace ``out_dir`` with exactly ``files`` (relative path → bytes), atomically."""
    for rel in files:
        check_relative(rel)
    with StagedTree(out_dir) as tree:
        for rel, data in sorted(files.items()):
            tree.write(rel, data)
        tree.commit()


class StagedTree:
    """The next tree of ``out_dir``, written file by file into a staging folder beside it
    (``folder``) while it is made, and swapped in whole by :meth:`commit`. Leaving the ``with``
    block without a commit (an error, a failed check) removes the staging folder; ``out_dir``
    is then as it was.

    A thread of its own creates the files, so that the file system's work (the kernel's, which
    runs without the interpreter lock) overlaps with making the next file; :meth:`flush` waits
    for what was handed over and raises the first error of writing it."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.folder = staging_dir(out_dir)
        self._folders: set[str] = {""}
        self._committed = False
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._drain, name="mirc-write", daemon=True)
        self._thread.start()

    def __enter__(self) -> StagedTree:
        return self

    def write(self, rel: str, data: bytes) -> None:
        """One file of the tree, at the planned path ``rel`` (checked as names)."""
        check_relative(rel)
        self._queue.put((rel, data))

    def flush(self) -> None:
        """Wait until every file handed over is on disk; raises the first error of writing."""
        self._queue.join()
        if self._error is not None:
            raise self._error

    def commit(self) -> None:
        """Make the tree written so far ``out_dir``, in one step."""
        self.flush()
        swap_in(self.folder, self.out_dir)
        self._committed = True

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if not self._committed:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write_one(*item)
                except OSError as error:
                    self._error = error
            self._queue.task_done()

    def _write_one(self, rel: str, data: bytes) -> None:
        parent = rel.rpartition("/")[0]
        if parent not in self._folders:
            (self.folder / parent).mkdir(parents=True, exist_ok=True)
            self._folders.add(parent)
        _create(f"{self.folder}/{rel}", data)


# A new file only (the staging folder is new and the build's own): never through a link.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | os.O_CLOEXEC


def _create(path: str, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` with bare system calls: a build writes hundreds
    of files, and a buffered file object per file costs more than the writing."""
    fd = os.open(path, _CREATE, 0o666)  # less the umask, as open() makes files
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def staging_dir(out_dir: Path) -> Path:
    """A new empty folder beside ``out_dir`` to build its next tree in (see :func:`swap_in`);
    one a killed run leaves behind is cleared by :func:`recover`."""
    out_dir = out_dir.absolute()
    if out_dir.is_symlink():
        raise WriteError(f"{out_dir} is a symbolic link; refusing to write through it")
    recover(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))


def swap_in(staging: Path, out_dir: Path) -> None:
    """Make the complete tree in ``staging`` the new ``out_dir`` in one step; the old tree and
    ``staging`` are gone afterwards. On failure ``out_dir`` is as it was."""
    out_dir = out_dir.absolute()
    try:
        os.sync()  # one flush for the whole tree instead of an fsync per file
        _swap(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)  # now holds the old tree
    fsync_folder(out_dir.parent)


def recover(out_dir: Path) -> None:
    """Clear what a killed build left beside ``out_dir``: staging folders, and the old tree
    of a swap interrupted between its two renames (fallback path only)."""
    for staging in out_dir.parent.glob(f".{out_dir.name}.new-*"):
        shutil.rmtree(staging, ignore_errors=True)
    if out_dir.exists():
        for stale in out_dir.parent.glob(f".{out_dir.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return
    olds = sorted(out_dir.parent.glob(f".{out_dir.name}.old-*"))
    if olds:
        os.replace(olds[-1], out_dir)


def _swap(staging: Path, out_dir: Path) -> None:
    """Exchange ``staging`` and ``out_dir``; afterwards ``staging`` holds the old tree."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        staging.mkdir()
        return
    if _exchange(staging, out_dir):
        return
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    os.replace(out_dir, old)
    os.replace(staging, out_dir)
    os.replace(old, staging)


def _exchange(a: Path, b: Path) -> bool:
    """``renameat2(RENAME_EXCHANGE)``: swap two paths in one step (Linux ≥ 3.15)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return bool(result == 0)


def read_tree(out_dir: Path) -> dict[str, bytes]:
    """Every file under ``out_dir`` (relative path → bytes), without following links."""
    found: dict[str, bytes] = {}
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(out_dir).as_posix()] = path.read_bytes()
    return found
