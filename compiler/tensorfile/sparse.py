"""Safetensors files without tensor data: a real header over a data region that is a hole.

Tests and ``mirc fingerprint`` need files with the headers of multi-gigabyte checkpoints. The
file is written as the format's serializer would write it (tensors sorted by dtype, widest first,
then by name; compact JSON padded with spaces to a multiple of 8), then extended to its full
length without writing the data, so that on file systems with sparse files it costs no disk.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence

from compiler.tensorfile.header import read_header
from compiler.tensorfile.model import (
    DTYPE_BITS,
    DTYPE_ORDER,
    LENGTH_PREFIX,
    METADATA_KEY,
    LayoutProblem,
    SafetensorsHeader,
    tensor_nbytes,
)

TensorSpec = tuple[str, Sequence[int]]


def write_sparse(
    path: str | os.PathLike[str],
    tensors: Mapping[str, TensorSpec],
    metadata: Mapping[str, str] | None = None,
) -> SafetensorsHeader:
    """Write a valid safetensors file of ``tensors`` (name → (dtype, shape)) with no data.

    The data reads back as zeros. The file is written to a temporary name beside ``path`` and
    renamed into place; the header is read back (and so validated) and returned.
    """
    header = _header_bytes(tensors, metadata)
    total = LENGTH_PREFIX + len(header) + _data_length(tensors)
    _write_atomic(os.fspath(path), len(header).to_bytes(LENGTH_PREFIX, "little") + header, total)
    return read_header(path)


def _header_bytes(tensors: Mapping[str, TensorSpec], metadata: Mapping[str, str] | None) -> bytes:
    entries: dict[str, object] = {}
    if metadata is not None:
        entries[METADATA_KEY] = dict(sorted(metadata.items()))
    offset = 0
    for name, (dtype, shape) in _serializer_order(tensors):
        nbytes = _nbytes(name, dtype, shape)
        entries[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(entries, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % LENGTH_PREFIX)


def _serializer_order(tensors: Mapping[str, TensorSpec]) -> list[tuple[str, TensorSpec]]:
    if METADATA_KEY in tensors:
        raise ValueError(f"{METADATA_KEY!r} cannot name a tensor")
    for name, (dtype, _) in tensors.items():
        if dtype not in DTYPE_BITS:
            raise ValueError(f"tensor {name!r}: unknown dtype {dtype!r}")
    return sorted(tensors.items(), key=lambda item: (-DTYPE_ORDER[item[1][0]], item[0]))


def _nbytes(name: str, dtype: str, shape: Sequence[int]) -> int:
    if any(type(dim) is not int or dim < 0 for dim in shape):
        raise ValueError(f"tensor {name!r}: shape {list(shape)} is not non-negative integers")
    try:
        return tensor_nbytes(name, dtype, tuple(shape))
    except LayoutProblem as problem:
        raise ValueError(problem.message) from None


def _data_length(tensors: Mapping[str, TensorSpec]) -> int:
    return sum(_nbytes(name, dtype, shape) for name, (dtype, shape) in tensors.items())


def _write_atomic(path: str, head: bytes, total: int) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sparse-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(head)
            stream.truncate(total)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
