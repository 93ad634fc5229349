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

import json
from collections import OrderedDict
from itertools import accumulate
from operator import itemgetter, mul

from compiler.tensorfile.model import (
    DTYPE_BITS,
    METADATA_KEY,
    U64_MAX,
    ShapeInfo,
    TensorTable,
    canonical_uints,
    element_count,
    shape_info,
)
from compiler.tensorfile.strict_json import SURROGATE_ESCAPE

_PRINTABLE = bytes(range(32, 256))  # every byte but the control characters
_METADATA_START = '{"__metadata__":'
# Objects as tuples of their members, so that a repeated key shows (and a list is no object).
_MEMBERS = json.JSONDecoder(object_pairs_hook=tuple)
# Sub-byte dtypes need a whole-byte check per tensor; the general reader does it.
_WIDTH = {dtype: bits // 8 for dtype, bits in DTYPE_BITS.items() if bits % 8 == 0}
_DTYPES = {dtype: dtype for dtype in _WIDTH}  # the one string object of each dtype
# The fixed piece at each place of the ten a tensor entry splits into at its quotes.
_FIXED = ((2, ":{"), (3, "dtype"), (4, ":"), (6, ","), (7, "shape"), (9, "data_offsets"))
_MAX_SIZE = U64_MAX // 8  # the reader counts bits, in 64 bits
_MEMO_LIMIT = 4096
_ELEMENTS = itemgetter(1)  # ShapeInfo.elements, without an attribute lookup per tensor
# Splitting at quotes makes a string per piece; past this length (some 28,000 tensors, more than
# any model file holds) the general reader, which builds only what the types allow, is safer.
_MAX_LENGTH = 4_000_000


# Shape spellings (``:[320,4],``) already parsed. Spellings recur across the files of one
# architecture, so each is parsed once; when the memo is full a new one replaces it.
_memo: dict[str, ShapeInfo] = {}
# The byte sizes of tensors by the width of their dtype and their shape spelling (of the memo).
_bytes: dict[int, dict[str, int]] = {}

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
    if entries.find("\\") >= 0 or data_length > _MAX_SIZE:
        return None
    pieces = entries.split('"')  # ten pieces a tensor; pieces[0] is ""
    count = len(pieces) // 10
    if len(pieces) != 1 + 10 * count or not count:
        return None
    for place, fixed in _FIXED:
        if pieces[place::10].count(fixed) != count:
            return None
    names, spellings, offsets = pieces[1::10], pieces[8::10], pieces[10::10]
    column = _dtype_column(pieces[5::10])
    del pieces  # most pieces are the fixed ones: freed at once
    name_set = frozenset(names)
    if len(name_set) != count or METADATA_KEY in name_set or not _plain(names) or not column:
        return None
    dtypes, sole = column
    laid_out = _lay_out(dtypes, sole, spellings, data_length)
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
    _bytes.clear()
    _layouts.clear()


def forget_layouts() -> None:
    """Empty the memo of tables (benchmarks use it to time a file as if its layout were new)."""
    _layouts.clear()


def _dtype_column(dtypes: list[str]) -> tuple[list[str], str | None] | None:
    """Each tensor's dtype as the one string object of that dtype (so that a column of one
    dtype is counted by identity), and that dtype when it is the only one; None if a dtype is
    not for this path."""
    first = _DTYPES.get(dtypes[0])
    if first is not None and dtypes.count(first) == len(dtypes):  # one dtype: the usual case
        return [first] * len(dtypes), first
    if not _DTYPES.keys() >= set(dtypes):
        return None
    return list(map(_DTYPES.__getitem__, dtypes)), None


def _metadata(text: str) -> tuple[dict[str, str], int] | None:
    """The ``__metadata__`` at the start and where the first name starts.

    The json module's C scanner reads the object whole, with its members in order; it reads
    strings as the general reader does (the same scanner), so a map of strings to strings
    without a repeated key or a surrogate escape is the one the general reader gives. Anything
    else, valid or not, goes to the general reader.
    """
    if not text.startswith(_METADATA_START):
        return ({}, 1) if text.startswith('{"') else None
    start = len(_METADATA_START)
    try:
        members, end = _MEMBERS.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    if not text.startswith(',"', end) or SURROGATE_ESCAPE.search(text, start, end):
        return None
    if members is None:  # the reader's Option: null is the same as no metadata
        return {}, end + 1
    if type(members) is not tuple or not all(type(value) is str for _, value in members):
        return None
    metadata = dict(members)
    return (metadata, end + 1) if len(metadata) == len(members) else None


def _plain(names: list[str]) -> bool:
    """Whether the names hold no control character (they hold no quote or backslash)."""
    return not "".join(names).encode("utf-8").translate(None, _PRINTABLE)


def _lay_out(
    dtypes: list[str], sole: str | None, spellings: list[str], data_length: int
) -> tuple[list[ShapeInfo], list[int]] | None:
    """Each tensor's shape, and the running end offsets of tensors of those shapes and dtypes.

    None if a shape spelling is not canonical or the ends miss ``data_length``. No size can
    overflow: each is at most the data length, itself checked.
    """
    memo = _current_memo()
    try:
        shapes = list(map(memo.__getitem__, spellings))
    except KeyError:
        if not _learn(memo, set(spellings)):
            return None
        shapes = list(map(memo.__getitem__, spellings))
    if sole is not None:  # one dtype: its sizes by spelling
        ends = _ends(_WIDTH[sole], spellings)
    else:
        sizes = map(mul, map(_ELEMENTS, shapes), map(_WIDTH.__getitem__, dtypes))
        ends = list(accumulate(sizes, initial=0))
    return (shapes, ends) if ends[-1] == data_length else None


def _current_memo() -> dict[str, ShapeInfo]:
    global _memo
    if len(_memo) > _MEMO_LIMIT:
        _memo = {}
        _bytes.clear()
    return _memo


def _ends(width: int, spellings: list[str]) -> list[int]:
    """The running end offsets of tensors of ``width`` bytes an element and these shape
    spellings (all in the memo of shapes)."""
    sizes = _bytes.setdefault(width, {})
    try:
        return list(accumulate(map(sizes.__getitem__, spellings), initial=0))
    except KeyError:  # a spelling new to this width
        new = set(spellings).difference(sizes)
        sizes.update((text, _memo[text].elements * width) for text in new)
        return list(accumulate(map(sizes.__getitem__, spellings), initial=0))


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
    piece closes the header instead: ``]}}``). One format call spells them all: each offset as
    its own piece would cost more than the whole comparison. Bytes format integers faster than
    text does, and the pieces are ASCII wherever they match."""
    if not pieces[-1].endswith("}}"):
        return False
    pieces[-1] = pieces[-1][:-1] + ","
    bounds = ends[:-1] * 2
    bounds[0::2] = ends[:-1]
    bounds[1::2] = ends[1:]
    spelled = (b":[%d,%d]}," * len(pieces)) % tuple(bounds)
    return "".join(pieces).encode("utf-8") == spelled
