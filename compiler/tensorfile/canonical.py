"""The fast path: headers in the layout the format's own serializer writes.

safetensors writes ``{"__metadata__":{…},"NAME":{"dtype":"F16","shape":[320,320],
"data_offsets":[0,204800]},…}`` with no whitespace, each tensor's data right after the one
before, padded with spaces. Such a header is read with whole-list operations instead of a JSON
parse and a loop per tensor: split at the quotes, check every fixed piece between them, parse
each shape spelling once (remembered across files), and compare the offsets with the running
total of the sizes. Headers past 4 MB, and sub-byte dtypes, are left to the general reader.

A name holds no quote (the split), no backslash and no control character (checked), so a header
that passes is exactly the canonical JSON of the values read back: the result is the one the
general reader gives. Anything else, valid or not, returns None and goes to the general reader,
which words the errors. A property test keeps the two readers in step.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate, pairwise, repeat
from operator import mul

from compiler.tensorfile import general
from compiler.tensorfile.model import (
    DTYPE_BITS,
    METADATA_KEY,
    U64_MAX,
    LayoutProblem,
    TensorTable,
    canonical_uints,
    element_count,
)
from compiler.tensorfile.strict_json import JsonProblem

_CONTROL = bytes(range(32))
_METADATA_START = '{"__metadata__":'
# The fixed piece at each place of the ten a tensor entry splits into at its quotes.
_FIXED = ((2, ":{"), (3, "dtype"), (4, ":"), (6, ","), (7, "shape"), (9, "data_offsets"))
_OFFSETS = ":[%d,%d]},"
# Sub-byte dtypes need a whole-byte check per tensor; the general reader does it.
_WIDTH = {dtype: bits // 8 for dtype, bits in DTYPE_BITS.items() if bits % 8 == 0}
_MAX_SIZE = U64_MAX // 8  # the reader counts bits, in 64 bits
_MEMO_LIMIT = 4096
# Splitting at quotes makes a string per piece; past this length (some 28,000 tensors, more than
# any model file holds) the general reader, which builds only what the types allow, is safer.
_MAX_LENGTH = 4_000_000


class _ShapeMemo:
    """Shape spellings (``:[320,4],``) already parsed: their dims and element counts.

    Spellings recur across the files of one architecture, so each is parsed once. When the memo
    is full a new one replaces it; a reader keeps the one it started with.
    """

    __slots__ = ("counts", "dims")

    def __init__(self) -> None:
        self.dims: dict[str, tuple[int, ...]] = {}
        self.counts: dict[str, int] = {}


_memo = _ShapeMemo()


def recognise(text: str, data_length: int) -> tuple[TensorTable, dict[str, str]] | None:
    """The tensors and metadata of a canonical header, or None to use the general reader."""
    if len(text) > _MAX_LENGTH:
        return None
    head = _metadata(text)
    if head is None or text.find("\\", head[1]) >= 0:
        return None
    metadata, start = head
    pieces = text.split('"')
    base = text.count('"', 0, start) + 1  # the first name's piece
    count = (len(pieces) - base) // 10
    if len(pieces) != base + 10 * count or not count:
        return None
    for place, fixed in _FIXED:
        if pieces[base - 1 + place :: 10].count(fixed) != count:
            return None
    names = pieces[base::10]
    index = dict(zip(names, range(count), strict=True))
    if len(index) != count or METADATA_KEY in index or not _plain(names):
        return None
    dtypes = pieces[base + 4 :: 10]
    laid_out = _lay_out(dtypes, pieces[base + 7 :: 10], data_length)
    if laid_out is None or not _offsets_match(pieces[base + 9 :: 10], laid_out[1]):
        return None
    return TensorTable(index, dtypes, *laid_out), metadata


def _metadata(text: str) -> tuple[dict[str, str], int] | None:
    """The ``__metadata__`` at the start and where the first name starts."""
    if not text.startswith(_METADATA_START):
        return ({}, 1) if text.startswith('{"') else None
    try:
        metadata, end = general.read_metadata(text, len(_METADATA_START))
    except (JsonProblem, LayoutProblem):
        return None
    return (metadata, end + 1) if text.startswith(',"', end) else None


def _plain(names: list[str]) -> bool:
    """Whether the names hold no control character (they hold no quote or backslash)."""
    joined = "".join(names).encode("utf-8")
    return len(joined.translate(None, _CONTROL)) == len(joined)


def _lay_out(
    dtypes: list[str], shapes: list[str], data_length: int
) -> tuple[list[tuple[int, ...]], list[int]] | None:
    """Each tensor's shape, and the running end offsets of tensors of those shapes and dtypes.

    None if a dtype or shape spelling is not for this path or the ends miss ``data_length``.
    No size can overflow: each is at most the data length, itself checked.
    """
    memo = _current_memo()
    widths: Iterator[int] | None = None
    if dtypes.count(dtypes[0]) == len(dtypes):  # one dtype: the usual case
        width = _WIDTH.get(dtypes[0])
        widths = None if width is None else repeat(width)
    elif _WIDTH.keys() >= set(dtypes):
        widths = map(_WIDTH.__getitem__, dtypes)
    if widths is None or data_length > _MAX_SIZE:
        return None
    try:
        counts = list(map(memo.counts.__getitem__, shapes))
    except KeyError:
        if not _learn(memo, set(shapes)):
            return None
        counts = list(map(memo.counts.__getitem__, shapes))
    ends = list(accumulate(map(mul, counts, widths), initial=0))
    if ends[-1] != data_length:
        return None
    return list(map(memo.dims.__getitem__, shapes)), ends


def forget_shapes() -> None:
    """Empty the shape memo (benchmarks use it to time files with unseen shapes)."""
    global _memo
    _memo = _ShapeMemo()


def _current_memo() -> _ShapeMemo:
    global _memo
    if len(_memo.dims) > _MEMO_LIMIT:
        _memo = _ShapeMemo()
    return _memo


def _learn(memo: _ShapeMemo, spellings: set[str]) -> bool:
    """Parse the shape spellings into ``memo``; False if one is not canonical."""
    for text in spellings.difference(memo.dims):
        if not (text.startswith(":[") and text.endswith("],")):
            return False
        tokens = text[2:-2].split(",") if len(text) > 4 else []
        if (tokens and not canonical_uints(tokens)) or any(len(token) > 20 for token in tokens):
            return False
        dims = tuple(map(int, tokens))
        count = element_count(dims)
        if count is None or max(dims, default=0) > U64_MAX:
            return False
        memo.dims[text], memo.counts[text] = dims, count
    return True


def _offsets_match(pieces: list[str], ends: list[int]) -> bool:
    """Whether each ``:[begin,end]},`` piece holds the running total of the sizes."""
    expected = list(map(_OFFSETS.__mod__, pairwise(ends)))
    expected[-1] = expected[-1][:-1] + "}"
    pieces[-1] = pieces[-1].rstrip(" ")
    return pieces == expected
