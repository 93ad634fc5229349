"""Where imported specs go, and how they are written (RELIABILITY rules 7 and 8).

Names that come from data become path parts only after they pass the MIR name grammar (no
``..``, no separators, no absolute paths, no Windows device names, length-capped). Writes go to
a temporary file in the target folder, are flushed to disk, and replace the target with
``os.replace``; symbolic links are never followed: a link where a folder or a file should be is
refused.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.validate.rules import check_name


def spec_rel_path(folder: str, arch: str, series: str, span: Span) -> str:
    """``FOLDER/ARCH/SERIES.yaml`` once ``arch`` and ``series`` are valid names; a bad name
    raises :class:`MircError` positioned at ``span`` (where the name came from)."""
    if folder not in ("models", "ops"):
        raise ValueError(f"not a spec folder: {folder!r}")
    problems = check_name(arch, "architecture", span) + check_name(series, "series", span)
    if problems:
        raise MircError(problems)
    return f"{folder}/{arch}/{series}.yaml"


def refuse_links(root: Path, rel: str) -> None:
    """Raise when a folder or the file on the way from ``root`` to ``root/rel`` is a link."""
    path = root
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            message = f"{path}: is a symbolic link; mirc does not write through links"
            raise MircError([Diagnostic.error("write-symlink", message, Span(str(path)))])


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync,
    ``os.replace``, then fsync the folder. A link at ``path`` is refused, not followed."""
    write_files_atomic({path: data})


def write_files_atomic(files: Mapping[Path, bytes]) -> None:
    """Write each file atomically (see :func:`write_atomic`), fsyncing each folder once at the
    end rather than once per file."""
    for path in files:
        if path.is_symlink():
            message = f"{path}: is a symbolic link; mirc does not write through links"
            raise MircError([Diagnostic.error("write-symlink", message, Span(str(path)))])
    mode = 0o666 & ~_umask()
    for path, data in files.items():
        _replace(path, data, mode)
    for folder in sorted({path.parent for path in files}):
        _fsync_folder(folder)


def _replace(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
