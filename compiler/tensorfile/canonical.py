"""The fast path: headers in the layout the format's own serializer writes.

safetensors writes ``{"__metadata__":{…},"NAME":{"dtype":"F16","shape":[320,320],
"data_offsets":[0,204800]},…}`` with no whitespace, each tensor's data right after the one
before, padded with spaces. Such a header is read with whole-list operations instead of a JSON
parse and a loop per tensor: split at the quotes, check every fixed piece between them, parse
each shape spelling once (remembered across files), and compare the offsets with the running
total of the sizes. Headers past 4 MB, and sub-byte dtypes, are left to the general reader. A
header whose entries are those of one read before (the same layout) takes that table.

A name holds no quote (the split), no backslash and no control character (checked), so a header
that passes is exactly the canonical JSON of the values read back: the result is the one the
general reader gives. Anything else, valid or not, returns None and goes to the general reader,
which words the errors. A property test keeps the two readers in step.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from itertools import accumulate, repeat
from operator import itemgetter, mul
from typing import NamedTuple

from compiler.tensorfile import general
from compiler.tensorfile.model import (
    DTYPE_BITS,
    METADATA_KEY,
    U64_MAX,
    LayoutProblem,
    ShapeInfo,
    TensorTable,
    canonical_uints,
    element_count,
    shape_info,
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
_ELEMENTS = itemgetter(1)  # ShapeInfo.elements, without an attribute lookup per tensor
# Splitting at quotes makes a string per piece; past this length (some 28,000 tensors, more than
# any model file holds) the general reader, which builds only what the types allow, is safer.
_MAX_LENGTH = 4_000_000
_CHUNK = 64_000  # characters of entries split at a time (some 500 tensors)


# Shape spellings (``:[320,4],``) already parsed. Spellings recur across the files of one
# architecture, so each is parsed once; when the memo is full a new one replaces it.
_memo: dict[str, ShapeInfo] = {}

# Tables already read in this process, by their tensor entries (the text from the first name to
# the end, less the padding) and data length. The files of a folder often share a layout (one
# architecture, dtype and LoRA rank), and so the text of their entries: such a file reads at the
# cost of comparing that text with the one the first of its layout validated. A table is
# read-only, so one serves them all. A table is found by the entries' length and ends, then
# compared in full; the oldest are forgotten past a number of tables or of characters kept.
_layouts: OrderedDict[tuple[int, int, str, str], tuple[str, TensorTable]] = OrderedDict()
_LAYOUTS_KEPT = 32
_LAYOUTS_CHARS = 8_000_000  # some 20 SDXL LoRAs
_ENDS = 64  # characters of each end of the entries in the key


def recognise(text: str, data_length: int) -> tuple[TensorTable, dict[str, str]] | None:
    """The tensors and metadata of a canonical header, or None to use the general reader."""
    if len(text) > _MAX_LENGTH:
        return None
    head = _metadata(text)
    if head is None:
        return None
    metadata, start = head
    end = len(text)
    while end > start and text[end - 1] == " ":  # the padding is no part of the layout
        end -= 1
    tail = max(start, end - _ENDS)
    key = (end - start, data_length, text[start : start + _ENDS], text[tail:end])
    kept = _layouts.get(key)
    if kept is not None and text.startswith(kept[0], start):
        _layouts.move_to_end(key)
        return kept[1], metadata
    entries = text[start:end]
    table = _read_entries(entries, data_length)
    if table is None:
        return None
    _keep(key, entries, table)
    return table, metadata


def _read_entries(entries: str, data_length: int) -> TensorTable | None:
    """The table of the tensor entries ``entries`` (from the first name's quote to the end)."""
    columns = None if entries.find("\\") >= 0 else _columns(entries)
    if columns is None:
        return None
    names, dtypes, spellings, offsets = columns
    name_set = frozenset(names)
    if len(name_set) != len(names) or METADATA_KEY in name_set or not _plain(names):
        return None
    laid_out = _lay_out(dtypes, spellings, data_length)
    if laid_out is None or not _offsets_match(offsets, laid_out[1]):
        return None
    return TensorTable(names, dtypes, *laid_out, name_set, plain_names=True)


def _keep(key: tuple[int, int, str, str], entries: str, table: TensorTable) -> None:
    _layouts[key] = (entries, table)
    kept = sum(length for length, *_ in _layouts)
    while len(_layouts) > _LAYOUTS_KEPT or kept > _LAYOUTS_CHARS:
        (length, *_), _ = _layouts.popitem(last=False)
        kept -= length


def forget() -> None:
    """Empty the memos of shapes and of tables, as a new process has them."""
    global _memo
    _memo = {}
    _layouts.clear()


def forget_layouts() -> None:
    """Empty the memo of tables (benchmarks use it to time a file as if its layout were new)."""
    _layouts.clear()


class _Columns(NamedTuple):
    """The variable pieces of the tensor entries: names, dtypes, shape and offset spellings."""

    names: list[str]
    dtypes: list[str]
    spellings: list[str]
    offsets: list[str]


def _columns(entries: str) -> _Columns | None:
    """The entries split at their quotes, with the fixed pieces checked; None if a piece is out
    of place.

    The text is split a chunk of entries at a time: split whole, a large header makes all its
    pieces at once, and the allocator takes fresh memory for them where chunk by chunk it
    reuses what the last chunk's pieces freed.
    """
    columns = _Columns([], [], [], [])
    start = 0
    while start < len(entries):
        end = entries.find(']},"', start + _CHUNK)
        end = len(entries) if end < 0 else end + 3  # the next name's quote
        pieces = entries[start:end].split('"')  # a quote starts the chunk: pieces[0] is ""
        count = len(pieces) // 10
        if len(pieces) != 1 + 10 * count or not count:
            return None
        for place, fixed in _FIXED:
            if pieces[place::10].count(fixed) != count:
                return None
        for column, place in zip(columns, (1, 5, 8, 10), strict=True):
            column += pieces[place::10]
        start = end
    return columns


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
    dtypes: list[str], spellings: list[str], data_length: int
) -> tuple[list[ShapeInfo], list[int]] | None:
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
        shapes = list(map(memo.__getitem__, spellings))
    except KeyError:
        if not _learn(memo, set(spellings)):
            return None
        shapes = list(map(memo.__getitem__, spellings))
    ends = list(accumulate(map(mul, map(_ELEMENTS, shapes), widths), initial=0))
    return (shapes, ends) if ends[-1] == data_length else None


def _current_memo() -> dict[str, ShapeInfo]:
    global _memo
    if len(_memo) > _MEMO_LIMIT:
        _memo = {}
    return _memo


def _learn(memo: dict[str, ShapeInfo], spellings: set[str]) -> bool:
    """Parse the shape spellings into ``memo``; False if one is not canonical."""
    for text in spellings.difference(memo):
        if not (text.startswith(":[") and text.endswith("],")):
            return False
        tokens = text[2:-2].split(",") if len(text) > 4 else []
        if (tokens and not canonical_uints(tokens)) or any(len(token) > 20 for token in tokens):
            return False
        dims = tuple(map(int, tokens))
        count = element_count(dims)
        if count is None or max(dims, default=0) > U64_MAX:
            return False
        memo[text] = shape_info(dims, count)
    return True


def _offsets_match(pieces: list[str], ends: list[int]) -> bool:
    """Whether each ``:[begin,end]},`` piece holds the running total of the sizes (the last
    piece closes the header instead: ``]}}`` and the padding). One format call spells them all:
    each offset as its own piece would cost more than the whole comparison."""
    last = pieces[-1].rstrip(" ")
    if not last.endswith("}}"):
        return False
    pieces[-1] = last[:-1] + ","
    bounds = ends[:-1] * 2
    bounds[0::2] = ends[:-1]
    bounds[1::2] = ends[1:]
    return "".join(pieces) == (_OFFSETS * len(pieces)) % tuple(bounds)
