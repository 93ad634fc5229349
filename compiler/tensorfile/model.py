"""The safetensors format's vocabulary: dtypes and their widths, limits, and the typed header.

The numbers follow the format's own reader (huggingface/safetensors ``safetensors/src/tensor.rs``,
release 0.8): its ``Dtype`` enum, ``Dtype::bitsize``, ``MAX_HEADER_SIZE`` and the checked
arithmetic of ``Metadata::validate`` on a 64-bit machine (``usize`` is ``u64``).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

# The bytes before the JSON header: its length as a little-endian u64.
LENGTH_PREFIX = 8
MAX_HEADER_LENGTH = 100_000_000
U64_MAX = 2**64 - 1
METADATA_KEY = "__metadata__"
T = TypeVar("T")
_LEADING_ZERO = re.compile(r"(?:^|,)0[0-9]")

# Element width in bits, in the order of the Rust enum (the serializer sorts by it).
DTYPE_BITS: Mapping[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
DTYPE_ORDER: Mapping[str, int] = {dtype: rank for rank, dtype in enumerate(DTYPE_BITS)}


class TensorInfo(NamedTuple):
    """One tensor as the header describes it; ``data_offsets`` count from the data start."""

    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]
    nbytes: int


class ShapeInfo(NamedTuple):
    """One shape, parsed once however many tensors have it: its dims, its element count, and
    the pieces of a layout-hash line that follow the name (``",[320,4]]`` and a newline, then
    the next line's ``["``; and ``",[320,4],"`` before a dtype)."""

    dims: tuple[int, ...]
    elements: int
    plain_tail: str
    typed_head: str


def shape_info(dims: tuple[int, ...], elements: int) -> ShapeInfo:
    """The :class:`ShapeInfo` of ``dims``, which hold ``elements`` elements."""
    spelled = "[" + ",".join(map(str, dims)) + "]"
    return ShapeInfo(dims, elements, f'",{spelled}]\n["', f'",{spelled},"')


class TensorTable(Mapping[str, TensorInfo]):
    """A header's tensors by name, in the order their bytes lie in the file; read-only.

    The tensors tile the data region, so the table keeps columns (names, dtypes, each tensor's
    :class:`ShapeInfo` and the running end offsets) and makes each :class:`TensorInfo` when it
    is asked for. Whole-file summaries read the columns.
    """

    __slots__ = (
        "_derived",
        "_dtypes",
        "_ends",
        "_names",
        "_plain",
        "_positions",
        "_set",
        "_shapes",
        "_sorted",
    )

    def __init__(
        self,
        names: list[str],
        dtypes: Sequence[str],
        shapes: Sequence[ShapeInfo],
        ends: Sequence[int],
        name_set: frozenset[str] | None = None,
        plain_names: bool | None = None,
    ) -> None:
        """``ends`` starts with 0 and has one more item than ``names``, which are distinct
        (``name_set``: them, if at hand). ``plain_names``: whether it is known that no name
        holds a quote, a backslash or a control character (None: not looked at)."""
        self._names = names
        self._dtypes = dtypes
        self._shapes = shapes
        self._ends = ends
        self._set = frozenset(names) if name_set is None else name_set
        self._plain = plain_names
        self._positions: dict[str, int] | None = None
        self._sorted: list[str] | None = None
        self._derived: dict[str, Any] = {}

    def __getitem__(self, name: str) -> TensorInfo:
        if name not in self._set:
            raise KeyError(name)
        position = self._position(name)
        begin, end = self._ends[position], self._ends[position + 1]
        return TensorInfo(
            self._dtypes[position], self._shapes[position].dims, (begin, end), end - begin
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._set

    def __repr__(self) -> str:
        return f"TensorTable({dict(self.items())!r})"

    def _position(self, name: str) -> int:
        """Where tensor ``name`` (which the table has) is in file order: found by bisection
        when that order is name order, as the serializer writes one dtype's tensors."""
        if self._positions is None:
            if self._sorted is self._names:
                return bisect_left(self._names, name)
            self._positions = dict(zip(self._names, range(len(self._names)), strict=True))
        return self._positions[name]

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """The shape of tensor ``name``, or None if there is none of that name."""
        if name not in self._set:
            return None
        if self._positions is None and self._sorted is self._names:  # _position, inline
            return self._shapes[bisect_left(self._names, name)].dims
        return self._shapes[self._position(name)].dims

    @property
    def names(self) -> Sequence[str]:
        """The names, in file order."""
        return self._names

    @property
    def name_set(self) -> frozenset[str]:
        return self._set

    @property
    def plain_names(self) -> bool | None:
        """Whether no name holds a quote, backslash or control character (None: unknown)."""
        return self._plain

    @property
    def dtypes(self) -> Sequence[str]:
        """Each tensor's dtype, in file order."""
        return self._dtypes

    @property
    def sole_dtype(self) -> str | None:
        """The dtype of every tensor when they share one (the usual case), else None."""
        return self.derived("sole dtype", lambda: _sole(self._dtypes))

    @property
    def shapes(self) -> Sequence[ShapeInfo]:
        """Each tensor's shape, in file order."""
        return self._shapes

    @property
    def ends(self) -> Sequence[int]:
        """0, then where each tensor's data ends, in file order."""
        return self._ends

    def sorted_names(self) -> list[str]:
        """The names in code point order (kept: hashes and prefix searches both need it)."""
        if self._sorted is None:
            ordered = sorted(self._names)
            self._sorted = self._names if ordered == self._names else ordered
        return self._sorted

    def derived(self, what: str, make: Callable[[], T]) -> T:
        """``make()``, made once per table under the name ``what``: a summary of the tensors
        (a table is read-only, and one may serve every file of its layout)."""
        if what not in self._derived:
            self._derived[what] = make()
        return cast(T, self._derived[what])

    def name_order(self) -> list[int] | None:
        """The file positions of the names in code point order; None when that is file order."""
        ordered = self.sorted_names()
        if ordered is self._names:
            return None
        if self._positions is None:
            self._positions = dict(zip(self._names, range(len(self._names)), strict=True))
        return list(map(self._positions.__getitem__, ordered))

    def rows(self) -> Iterator[tuple[str, str, tuple[int, ...], int]]:
        """Each tensor's name, dtype, shape and byte length, in file order, without making a
        :class:`TensorInfo` per tensor."""
        ends = self._ends
        sizes = map(int.__sub__, ends[1:], ends[:-1])
        dims = (shape.dims for shape in self._shapes)
        return zip(self._names, self._dtypes, dims, sizes, strict=True)


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """A validated safetensors header.

    ``tensors`` are in the order their bytes lie in the file; ``metadata`` is the header's
    ``__metadata__`` (empty when absent). Both are read-only mappings.
    """

    path: str
    tensors: TensorTable
    metadata: Mapping[str, str]
    header_length: int
    file_size: int

    @property
    def data_start(self) -> int:
        """The file offset of the first tensor byte."""
        return LENGTH_PREFIX + self.header_length

    @property
    def data_length(self) -> int:
        """How many bytes of tensor data follow the header."""
        return self.file_size - self.data_start


class LayoutProblem(Exception):
    """A header that is JSON but breaks one of the format's rules; ``pos`` is a character index
    into the header text, where known."""

    def __init__(
        self, code: str, message: str, pos: int | None = None, notes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos
        self.notes = notes


def canonical_uints(tokens: list[str]) -> bool:
    """Whether every token is an unsigned integer as JSON writes it: ASCII digits, no sign, no
    leading zero. Whole-list operations, so that a list of millions costs no Python loop."""
    if "" in tokens:
        return False
    listed = ",".join(tokens)
    digits = listed.replace(",", "")
    return digits.isascii() and digits.isdigit() and _LEADING_ZERO.search(listed) is None


def element_count(shape: tuple[int, ...]) -> int | None:
    """The product of ``shape``, or None where a partial product overflows 64 bits.

    Like the reader's ``try_fold(1, checked_mul)``: a zero after an overflow does not save it,
    a zero before one does. Past 64 factors above 1 the product overflows, so no more than that
    are multiplied, however long the shape.
    """
    end = shape.index(0) if 0 in shape else len(shape)
    factors = list(filter((1).__ne__, shape[:end]))
    if len(factors) > 64 or math.prod(factors) > U64_MAX:
        return None
    return math.prod(factors) if end == len(shape) else 0


def tensor_nbytes(name: str, dtype: str, shape: tuple[int, ...], pos: int | None = None) -> int:
    """The byte length of ``shape`` elements of ``dtype``, with the reader's overflow checks."""
    count = element_count(shape)
    if count is None or count * DTYPE_BITS[dtype] > U64_MAX:
        message = f"tensor {name!r}: the size of shape {list(shape)} of {dtype} overflows 64 bits"
        raise LayoutProblem("safetensors-overflow", message, pos)
    bits = count * DTYPE_BITS[dtype]
    if bits % 8:
        message = f"tensor {name!r}: {count} {dtype} elements do not fill a whole number of bytes"
        raise LayoutProblem("safetensors-misaligned", message, pos)
    return bits // 8


def _sole(dtypes: Sequence[str]) -> str | None:
    return dtypes[0] if dtypes and dtypes.count(dtypes[0]) == len(dtypes) else None
