"""Replacing a file so that readers see the old bytes or the new ones, never a mix.

The new bytes go to a temporary file in the same folder (so the final rename stays on one file
system), which is flushed and fsynced, then renamed over the target with ``os.replace``, and the
folder is fsynced so the rename itself survives a crash (RELIABILITY rule 8). If anything fails,
the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; an existing file keeps its permission bits.

    A symbolic link at ``path`` is refused (``OSError`` with ``ELOOP``): replacing it would
    swap the link for a file, and writing through it would change a file elsewhere.
    """
    target = Path(path)
    if target.is_symlink():
        raise OSError(errno.ELOOP, "refusing to write through a symbolic link", str(target))
    mode = _existing_mode(target)
    temporary, handle = _create_temporary(target)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)


def _existing_mode(target: Path) -> int | None:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return None


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new file beside ``target`` (created with the umask's permissions, like any new file)."""
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, _CREATE, 0o666)
        except FileExistsError:
            continue


def fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened for fsync on some systems (Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
