"""Reading a safetensors header: the length prefix, the JSON, the layout rules.

Only the 8-byte length and the header are read, never tensor data. The rules are the format's own
reader's (``SafeTensors::read_metadata`` and ``Metadata::validate`` in huggingface/safetensors):
a length of at most 100,000,000 bytes that fits in the file, strict UTF-8 JSON, a dtype from the
format's list, shapes and offsets that are 64-bit unsigned integers, and tensors that tile the
data region from byte 0 to the end of the file without gap or overlap. Where that reader lets a
duplicate key through (it keeps the last), mirc refuses it, as RELIABILITY rule 2 asks.

Headers in the layout the format's serializer writes take a fast path (``canonical.py``); any
other header, and any header the fast path does not accept, goes through the general reader
(``general.py``), which is the one that words the errors.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from types import MappingProxyType

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.tensorfile import canonical, general, strict_json
from compiler.tensorfile.model import (
    LENGTH_PREFIX,
    MAX_HEADER_LENGTH,
    LayoutProblem,
    SafetensorsHeader,
    TensorTable,
)
from compiler.tensorfile.sniff import FileFormat, classify, refusal

_JSON_START = b"{ \t\n\r"
# O_NONBLOCK keeps a FIFO from blocking the open; the file is then refused as not regular.
# One read takes the length and, for most files, the whole header.
_FIRST_READ = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path``.

    Raises :class:`MircError` with a ``FILE: error: message (byte N)`` diagnostic when the file
    is not one the format's reader would accept, and for pickles and other formats.
    """
    file = os.fspath(path)
    fd, size = _open_regular(file)
    try:
        first = _read_exactly(fd, min(size, _FIRST_READ) or LENGTH_PREFIX)
        prefix = first[:LENGTH_PREFIX]
        end = LENGTH_PREFIX + _header_length(file, prefix, size)
        raw = first[LENGTH_PREFIX:end] if end <= len(first) else _read_at(fd, LENGTH_PREFIX, end)
    finally:
        os.close(fd)
    if raw[:1] not in _JSON_START:
        _refuse_foreign(file, prefix + raw[:8])
    return parse_header(file, raw, size)


def parse_header(file: str, raw: bytes, file_size: int) -> SafetensorsHeader:
    """Validate header bytes ``raw`` of a file of ``file_size`` bytes named ``file``."""
    data_length = file_size - LENGTH_PREFIX - len(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        message = "the header is not valid UTF-8"
        raise _error(file, "safetensors-utf8", message, LENGTH_PREFIX + error.start) from None
    fast = canonical.recognise(text, data_length)
    tensors, metadata = fast or _read_general(file, raw, text, data_length)
    return SafetensorsHeader(file, tensors, MappingProxyType(metadata), len(raw), file_size)


def _open_regular(file: str) -> tuple[int, int]:
    """An open descriptor on ``file`` and its size; refuses folders, pipes and devices."""
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except OSError as error:
        raise _error(file, "io", f"cannot open: {error.strerror}", None) from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise _error(file, "io", "not a regular file", None)
    return fd, status.st_size


def _read_exactly(fd: int, count: int) -> bytes:
    """``count`` bytes from ``fd``, or fewer only at the end of the file."""
    data = os.read(fd, count)
    if len(data) == count:
        return data
    chunks = [data]
    remaining = count - len(data)
    while data and remaining > 0:
        data = os.read(fd, remaining)
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


def _read_at(fd: int, start: int, end: int) -> bytes:
    """The bytes from ``start`` to ``end`` of the file (fewer only if it is shorter)."""
    os.lseek(fd, start, os.SEEK_SET)
    return _read_exactly(fd, end - start)


def _header_length(file: str, prefix: bytes, size: int) -> int:
    if len(prefix) < LENGTH_PREFIX:
        _refuse_foreign(file, prefix)
        message = f"the file is {size} bytes long; a safetensors file starts with an 8-byte length"
        raise _error(file, "safetensors-too-small", message, 0)
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_LENGTH:
        _refuse_foreign(file, prefix)
        message = f"header length {length} is over the limit of {MAX_HEADER_LENGTH:,} bytes"
        raise _error(file, "safetensors-header-too-large", message, 0)
    if LENGTH_PREFIX + length > size:
        _refuse_foreign(file, prefix)
        message = f"header length {length} runs past the end of the file ({size} bytes)"
        raise _error(file, "safetensors-header-past-end", message, 0)
    return length


def _refuse_foreign(file: str, prefix: bytes) -> None:
    kind = classify(prefix, file)
    if kind not in (FileFormat.SAFETENSORS, FileFormat.UNKNOWN):
        raise MircError([refusal(file, kind)])


def _read_general(
    file: str, raw: bytes, text: str, data_length: int
) -> tuple[TensorTable, dict[str, str]]:
    try:
        entries, metadata = general.read(text)
        tensors, end = general.tile(entries)
    except strict_json.JsonProblem as problem:
        raise _error(
            file, "safetensors-json", problem.message, _byte_of(text, problem.pos)
        ) from None
    except LayoutProblem as problem:
        byte = _byte_of(text, problem.pos)
        raise _error(file, problem.code, problem.message, byte, problem.notes) from None
    if end != data_length:
        message = (
            f"the tensors cover {end} bytes of data, but {data_length} bytes follow the header"
        )
        byte = LENGTH_PREFIX + len(raw) + min(end, data_length)
        raise _error(file, "safetensors-data-length", message, byte)
    return tensors, metadata


def _byte_of(text: str, pos: int | None) -> int:
    """The file offset of character ``pos`` of the header (the header's start if unknown)."""
    return LENGTH_PREFIX + (0 if pos is None else len(text[:pos].encode("utf-8")))


def _error(
    file: str, code: str, message: str, byte: int | None, notes: Iterable[str] = ()
) -> MircError:
    span = Span(file, byte=byte)
    return MircError([Diagnostic.error(code, message, span, notes)])
