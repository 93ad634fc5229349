"""Hashes of a safetensors file: its tensor bytes, on request only, and its layout.

``mirc identify`` matches files by layout (which tensors, with which shapes, and optionally which
dtypes), which the header alone tells; hashing the tensor bytes reads the whole file, so it is a
separate function that nothing calls unless asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring as _quote
from operator import itemgetter
from typing import Any

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.tensorfile.model import SafetensorsHeader, TensorInfo, TensorTable

CHUNK_SIZE = 16 * 1024 * 1024
_CONTROL = bytes(range(32))
_TYPED_TAIL = '"]\n["'
_PLAIN_TAIL = itemgetter(2)  # ShapeInfo.plain_tail, read without an attribute lookup per tensor
_TYPED_HEAD = itemgetter(3)


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
    """:func:`layout_digest` of ``(name, dtype, shape)`` rows, in any order."""
    layout, layout_dtype = layout_digests(rows)
    return layout_dtype if with_dtype else layout


def layout_digests(rows: Iterable[Sequence[Any]]) -> tuple[str, str]:
    """:func:`layout_digest` without and with dtypes, of ``(name, dtype, shape, …)`` rows in
    any order, in one pass.

    Each line is what ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))`` writes,
    spelled out with the JSON encoder's string quoting, since a dumps call per tensor costs more
    than reading the header did; each distinct shape is spelled once.
    """
    ordered = sorted(rows, key=itemgetter(0))
    names = [row[0] for row in ordered]
    joined = "".join(names)
    # encode_basestring escapes only quotes, backslashes and control characters.
    plain_names = joined.isprintable() and '"' not in joined and "\\" not in joined
    quoted = [f'"{name}"' for name in names] if plain_names else list(map(_quote, names))
    dims: dict[tuple[int, ...], str] = {}
    for row in ordered:
        if row[2] not in dims:
            dims[row[2]] = ",".join(map(str, row[2]))
    heads = [f"[{name},[{dims[row[2]]}]" for name, row in zip(quoted, ordered, strict=True)]
    dtypes = [row[1] for row in ordered]
    plain = "]\n".join(heads) + "]\n" if heads else ""
    if len(set(dtypes)) == 1:
        end = f',"{dtypes[0]}"]\n'
        typed = end.join(heads) + end
    else:
        typed = "".join(f'{head},"{dtype}"]\n' for head, dtype in zip(heads, dtypes, strict=True))
    return _sha256(plain), _sha256(typed)


def table_digests(tensors: TensorTable) -> tuple[str, str]:
    """:func:`layout_digests` of every tensor of a table, made from its columns (once per table).

    Each line is the name between the row's pieces: ``["`` (the previous line's tail), the
    name, the shape's tail (``",[320,4]]`` and a newline), or for the dtype hash the shape's head
    (``",[320,4],"``), the dtype and ``"]`` and a newline. The pieces are interleaved by slice
    assignment and joined once, so no string is made per tensor. Names that JSON would escape
    take :func:`layout_digests`.
    """
    return tensors.derived("layout digests", lambda: _table_digests(tensors))


def _table_digests(tensors: TensorTable) -> tuple[str, str]:
    names, shapes, dtypes = tensors.sorted_names(), tensors.shapes, tensors.dtypes
    order = tensors.name_order()
    if order is not None:
        shapes = list(map(shapes.__getitem__, order))
        dtypes = list(map(dtypes.__getitem__, order))
    if not (_plain(names) if tensors.plain_names is None else tensors.plain_names):
        return layout_digests(tensors.rows())
    count = len(names)
    pieces = [_TYPED_TAIL] * (2 * count)
    pieces[0::2] = names
    pieces[1::2] = map(_PLAIN_TAIL, shapes)
    plain = "".join(pieces)
    if tensors.sole_dtype is not None:  # one dtype: it and the line's end, one piece
        pieces = [tensors.sole_dtype + _TYPED_TAIL] * (3 * count)
        pieces[0::3] = names
        pieces[1::3] = map(_TYPED_HEAD, shapes)
    else:
        pieces = [_TYPED_TAIL] * (4 * count)
        pieces[0::4] = names
        pieces[1::4] = map(_TYPED_HEAD, shapes)
        pieces[2::4] = dtypes
    typed = "".join(pieces)
    return _sha256_lines(plain), _sha256_lines(typed)


def _plain(names: list[str]) -> bool:
    """Whether JSON writes each name as it is: no quote, backslash or control character."""
    joined = "".join(names)
    if '"' in joined or "\\" in joined:
        return False
    encoded = joined.encode("utf-8")
    return len(encoded.translate(None, _CONTROL)) == len(encoded)


def _sha256_lines(text: str) -> str:
    """The sha256 of lines joined as ``line1`` ... ``["`` with that opening before the first and
    the last one's cut off."""
    if not text:
        return _sha256("")
    digest = hashlib.sha256(b'["')
    digest.update(memoryview(text.encode("utf-8"))[:-2])
    return digest.hexdigest()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
