"""Hashes of a safetensors file: its tensor bytes, on request only, and its layout.

``mirc identify`` matches files by layout (which tensors, with which shapes, and optionally which
dtypes), which the header alone tells; hashing the tensor bytes reads the whole file, so it is a
separate function that nothing calls unless asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring as _quote

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.tensorfile.model import SafetensorsHeader, TensorInfo

CHUNK_SIZE = 16 * 1024 * 1024


def data_digest(header: SafetensorsHeader, chunk_size: int = CHUNK_SIZE) -> str:
    """The sha256 (hex) of all tensor bytes: the data region after the header, in file order.

    Reads the file in ``chunk_size`` pieces into one reused buffer. A file that has changed
    length since its header was read is refused.
    """
    digest = hashlib.sha256()
    buffer = bytearray(min(chunk_size, max(header.data_length, 1)))
    view = memoryview(buffer)
    with open(header.path, "rb", buffering=0) as stream:
        stream.seek(header.data_start)
        remaining = header.data_length
        while remaining:
            count = stream.readinto(view[: min(remaining, len(buffer))]) or 0
            if count == 0:
                message = "the file is shorter than when its header was read"
                span = Span(header.path, byte=header.file_size - remaining)
                raise MircError([Diagnostic.error("safetensors-changed", message, span)])
            digest.update(view[:count])
            remaining -= count
    return digest.hexdigest()


def layout_digest(tensors: Mapping[str, TensorInfo], *, with_dtype: bool = False) -> str:
    """The sha256 (hex) of the tensors' names and shapes, and dtypes if ``with_dtype``.

    The hashed text has one compact JSON array per tensor, sorted by name (code point order),
    each followed by a newline, as UTF-8: ``["model.w",[320,4]]`` or ``["model.w",[320,4],"F16"]``.
    The file's tensor order, offsets and metadata do not enter it.
    """
    rows = ((name, info.dtype, info.shape) for name, info in tensors.items())
    return layout_digest_of(rows, with_dtype=with_dtype)


def layout_digest_of(
    rows: Iterable[tuple[str, str, tuple[int, ...]]], *, with_dtype: bool = False
) -> str:
    """:func:`layout_digest` of ``(name, dtype, shape)`` rows, in any order.

    Each line is what ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))`` writes,
    spelled out with the JSON encoder's string quoting, since a dumps call per tensor costs more
    than reading the header did.
    """
    lines = [
        f"[{_quote(name)},[{','.join(map(str, shape))}]"
        + (f',"{dtype}"]\n' if with_dtype else "]\n")
        for name, dtype, shape in sorted(rows)
    ]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
