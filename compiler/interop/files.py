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

from compiler.atomicfile import fsync_folder
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


def check_write_path(root: Path, rel: str) -> None:
    """Raise unless ``root/rel`` can be written without following a link: each folder on the
    way is a real folder or missing, and the file is a regular file or missing."""
    path = root
    parts = rel.split("/")
    for depth, part in enumerate(parts, start=1):
        path = path / part
        problem = None
        if path.is_symlink():
            problem = "a symbolic link; mirc does not write through links"
        elif depth < len(parts) and path.exists() and not path.is_dir():
            problem = "not a folder"
        elif depth == len(parts) and path.exists() and not path.is_file():
            problem = "not a regular file"
        if problem is not None:
            message = f"{problem} (on the way to {root / rel})"
            raise MircError([Diagnostic.error("write-path", message, Span(str(path)))])


def write_files_atomic(files: Mapping[Path, bytes]) -> None:
    """Write several files, each atomically (see :func:`write_atomic`), all or nothing as far
    as a file system allows: every temporary file is written and fsynced before the first
    ``os.replace``, so running out of space or permission changes nothing; folders are fsynced
    once at the end. Failures raise :class:`MircError`."""
    for path in files:
        if path.is_symlink():
            message = f"{path}: is a symbolic link; mirc does not write through links"
            raise MircError([Diagnostic.error("write-symlink", message, Span(str(path)))])
    created: list[Path] = []
    staged: list[tuple[str, Path]] = []
    try:
        mode = 0o666 & ~_umask()
        for path, data in files.items():
            created.extend(_make_folders(path.parent))
            staged.append((_temporary(path, data, mode), path))
        for temporary, path in staged:
            os.replace(temporary, path)
    except OSError as exc:
        _undo(staged, created)
        where = exc.filename or next(iter(files), "")
        message = f"cannot write {where}: {exc.strerror or exc}"
        raise MircError([Diagnostic.error("write", message, Span(str(where)))]) from None
    for folder in sorted({path.parent for path in files}):
        fsync_folder(folder)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _temporary(path: Path, data: bytes, mode: int) -> str:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return temporary


def _undo(staged: list[tuple[str, Path]], created: list[Path]) -> None:
    for temporary, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
