"""Reading a safetensors header: the length prefix, the JSON, the layout rules.

Only the 8-byte length and the header are read, never tensor data. The rules are the format's own
reader's (``SafeTensors::read_metadata`` and ``Metadata::validate`` in huggingface/safetensors):
a length of at most 100,000,000 bytes that fits in the file, strict UTF-8 JSON, a dtype from the
format's list, shapes and offsets that are 64-bit unsigned integers, and tensors that tile the
data region from byte 0 to the end of the file without gap or overlap. Where that reader lets a
duplicate key through (it keeps the last), mirc refuses it, as RELIABILITY rule 2 asks.

Headers in the layout the format's serializer writes take a fast path (``canonical.py``); any
other header, and any header the fast path does not accept, goes through the general reader here,
which is the one that words the errors.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from compiler.diagnostics import Diagnostic, MircError, Span, did_you_mean
from compiler.tensorfile import canonical, strict_json
from compiler.tensorfile.model import (
    DTYPE_BITS,
    LENGTH_PREFIX,
    MAX_HEADER_LENGTH,
    METADATA_KEY,
    U64_MAX,
    LayoutProblem,
    SafetensorsHeader,
    TensorTable,
    tensor_nbytes,
)
from compiler.tensorfile.sniff import FileFormat, classify, refusal

_FIELDS = ("dtype", "shape", "data_offsets")
_JSON_START = b"{ \t\n\r"
# O_NONBLOCK keeps a FIFO from blocking the open; the file is then refused as not regular.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
_Entry = tuple[int, int, str, str, tuple[int, ...]]


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at ``path``.

    Raises :class:`MircError` with a ``FILE: error: message (byte N)`` diagnostic when the file
    is not one the format's reader would accept, and for pickles and other formats.
    """
    file = os.fspath(path)
    fd, size = _open_regular(file)
    try:
        prefix = _read_exactly(fd, LENGTH_PREFIX)
        raw = _read_exactly(fd, _header_length(file, prefix, size))
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
        entries, metadata, extra = _entries(strict_json.loads(text))
        if extra:
            _check_depth(text)
        tensors, end = _tile(entries)
    except strict_json.JsonProblem as problem:
        byte = None if problem.pos is None else _byte_of(text, problem.pos)
        raise _error(file, "safetensors-json", problem.message, byte) from None
    except LayoutProblem as problem:
        byte = _locate(raw, problem.tensor)
        raise _error(file, problem.code, problem.message, byte, problem.notes) from None
    if end != data_length:
        message = (
            f"the tensors cover {end} bytes of data, but {data_length} bytes follow the header"
        )
        byte = LENGTH_PREFIX + len(raw) + min(end, data_length)
        raise _error(file, "safetensors-data-length", message, byte)
    return tensors, metadata


def _entries(root: Any) -> tuple[list[_Entry], dict[str, str], bool]:
    if not isinstance(root, dict):
        message = f"the header must be a JSON object, not {_kind(root)}"
        raise LayoutProblem("safetensors-header", message)
    entries, metadata, extra = [], {}, False
    for name, value in root.items():
        if name == METADATA_KEY:
            metadata = _metadata(value)
        else:
            entries.append(_entry(name, value))
            extra = extra or len(value) > len(_FIELDS)
    return entries, metadata, extra


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}  # the reader's Option: null is the same as no metadata
    if not isinstance(value, dict):
        message = f"'__metadata__' must map strings to strings, not be {_kind(value)}"
        raise LayoutProblem("safetensors-metadata", message, METADATA_KEY)
    for key, item in value.items():
        if not isinstance(item, str):
            message = f"'__metadata__' value for {key!r} must be a string, not {_kind(item)}"
            raise LayoutProblem("safetensors-metadata", message, METADATA_KEY)
    return value


def _entry(name: str, value: Any) -> _Entry:
    if not isinstance(value, dict):
        message = f"tensor {name!r} must be an object with dtype, shape and data_offsets"
        raise LayoutProblem("safetensors-tensor", f"{message}, not {_kind(value)}", name)
    for field in _FIELDS:
        if field not in value:
            raise LayoutProblem("safetensors-tensor", f"tensor {name!r} has no {field!r}", name)
    dtype = value["dtype"]
    if not isinstance(dtype, str):
        message = f"tensor {name!r}: dtype must be a string, not {_kind(dtype)}"
        raise LayoutProblem("safetensors-dtype", message, name)
    if dtype not in DTYPE_BITS:
        upper = dtype.upper()
        notes = (
            (f"did you mean {upper!r}?",)
            if upper in DTYPE_BITS
            else did_you_mean(dtype, DTYPE_BITS)
        )
        raise LayoutProblem(
            "safetensors-dtype", f"tensor {name!r}: unknown dtype {dtype!r}", name, notes
        )
    shape = _integers(name, "shape", value["shape"])
    offsets = _integers(name, "data_offsets", value["data_offsets"])
    if len(offsets) != 2:
        message = (
            f"tensor {name!r}: data_offsets must be two numbers [begin, end], not {len(offsets)}"
        )
        raise LayoutProblem("safetensors-tensor", message, name)
    return offsets[0], offsets[1], name, dtype, shape


def _integers(name: str, field: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        message = f"tensor {name!r}: {field} must be a list of integers, not {_kind(value)}"
        raise LayoutProblem("safetensors-tensor", message, name)
    for index, item in enumerate(value):
        if type(item) is not int or item < 0:
            message = f"tensor {name!r}: {field}[{index}] must be a non-negative integer, not "
            raise LayoutProblem("safetensors-tensor", message + _kind(item), name)
        if item > U64_MAX:
            message = f"tensor {name!r}: {field}[{index}] = {item} does not fit in 64 bits"
            raise LayoutProblem("safetensors-overflow", message, name)
    return tuple(value)


def _check_depth(text: str) -> None:
    """Unknown keys in a tensor entry are ignored, as by the reader, but still nest at most 127."""
    problem = strict_json.find_problem(text)
    if problem is not None:
        raise problem


def _tile(entries: list[_Entry]) -> tuple[TensorTable, int]:
    """Order the tensors by offsets and check that they tile the data (``Metadata::validate``).

    Returns the tensors in that order and where their data ends.
    """
    entries.sort(key=lambda entry: entry[:2])
    ends = [0]
    for begin, end, name, dtype, shape in entries:
        if begin != ends[-1] or end < begin:
            message = _offset_message(name, begin, end, ends[-1])
            raise LayoutProblem("safetensors-offsets", message, name)
        nbytes = tensor_nbytes(name, dtype, shape)
        if end - begin != nbytes:
            message = (
                f"tensor {name!r}: data_offsets [{begin}, {end}] hold {end - begin} bytes, "
                f"but shape {list(shape)} of {dtype} takes {nbytes}"
            )
            raise LayoutProblem("safetensors-size", message, name)
        ends.append(end)
    index = {entry[2]: position for position, entry in enumerate(entries)}
    dtypes = [entry[3] for entry in entries]
    shapes = [entry[4] for entry in entries]
    return TensorTable(index, dtypes, shapes, ends), ends[-1]


def _offset_message(name: str, begin: int, end: int, position: int) -> str:
    where = f"tensor {name!r}: data_offsets [{begin}, {end}]"
    if end < begin:
        return f"{where} end before they begin"
    if begin < position:
        return f"{where} overlap the tensor before, which ends at {position}"
    if position == 0:
        return f"{where} must start at 0: the first tensor's data starts the data region"
    return f"{where} leave a gap: the tensor before ends at {position}"


def _locate(raw: bytes, tensor: str | None) -> int:
    """The byte offset of the key ``tensor`` in the header, or of the header itself."""
    if tensor is not None:
        index = raw.find(json.dumps(tensor, ensure_ascii=False).encode() + b":")
        if index >= 0:
            return LENGTH_PREFIX + index
    return LENGTH_PREFIX


def _byte_of(text: str, pos: int) -> int:
    return LENGTH_PREFIX + len(text[:pos].encode("utf-8"))


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return "-0" if value == 0 and str(value).startswith("-") else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else "a string"


def _error(
    file: str, code: str, message: str, byte: int | None, notes: Iterable[str] = ()
) -> MircError:
    span = Span(file, byte=byte)
    return MircError([Diagnostic.error(code, message, span, notes)])
