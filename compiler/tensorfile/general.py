"""The general reader: any header, read member by member into the format's types.

serde_json reads a header straight into the Rust reader's types, so it stops at the first value
of the wrong type without building it. This reader does the same with the json module's C
scanners: it walks the top-level object and each tensor entry key by key, reads strings and
integer lists where the types expect them, and refuses anything else where it starts. A 100 MB
header of nested lists is refused at its first bracket, not decoded first. Only the values of
unknown keys in a tensor entry, which the format's reader also keeps whole, are decoded in full
(with strict_json's rules). Every problem carries the character position it was found at.
"""

from __future__ import annotations

import itertools
import json
import re
from _json import scanstring  # the json module's C string scanner
from collections.abc import Iterator
from itertools import repeat
from typing import NamedTuple

from compiler.diagnostics import did_you_mean
from compiler.tensorfile import strict_json
from compiler.tensorfile.model import (
    DTYPE_BITS,
    METADATA_KEY,
    U64_MAX,
    LayoutProblem,
    TensorTable,
    canonical_uints,
    element_count,
    shape_info,
    tensor_nbytes,
)
from compiler.tensorfile.strict_json import JsonProblem

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_UINT = r"(?:0|[1-9][0-9]*)"
_JSON_SPACE = " \t\n\r"
_NUMBER = re.compile(rf"-?{_UINT}(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_CONSTANT = re.compile(r"NaN|-?Infinity")
_FIELDS = ("dtype", "shape", "data_offsets")


class Entry(NamedTuple):
    """A tensor entry as read, before the layout checks; ``at`` is its key's position."""

    begin: int
    end: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    at: int


class _Cursor:
    """A position in the header text, with the moves a JSON reader needs."""

    __slots__ = ("pos", "surrogates", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        # Whether strings may hold surrogate escapes: only then is each string checked.
        self.surrogates = strict_json.SURROGATE_ESCAPE.search(text) is not None

    def peek(self) -> str:
        """The next character after whitespace ('' at the end); the cursor moves to it."""
        char = self.text[self.pos : self.pos + 1]
        if char and char in _JSON_SPACE:
            match = _WHITESPACE.match(self.text, self.pos)
            assert match is not None  # the pattern matches the empty string
            self.pos = match.end()
            char = self.text[self.pos : self.pos + 1]
        return char

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise JsonProblem(f"invalid JSON: expected {what}", self.pos)
        self.pos += 1

    def string(self) -> str:
        """The string at the cursor (which is at its opening quote)."""
        at = self.pos
        try:
            value, self.pos = scanstring(self.text, at + 1, True)
        except json.JSONDecodeError as error:
            raise JsonProblem(strict_json.decode_message(error), error.pos) from None
        if self.surrogates and strict_json.has_lone_surrogate(value):
            raise JsonProblem("a \\u escape leaves an unpaired UTF-16 surrogate", at)
        return value

    def members(self) -> Iterator[tuple[str, int]]:
        """Each key of the object at the cursor and its position; the cursor is then at its
        value, which the caller reads. Refuses repeated keys."""
        self.expect("{", "'{'")
        seen: set[str] = set()
        closing = self.peek() == "}"
        while not closing:
            at = self.pos
            if self.peek() != '"':
                raise JsonProblem("invalid JSON: expected a key in double quotes", at)
            key = self.string()
            if key in seen:
                raise JsonProblem(f"duplicate key {key!r}", at)
            seen.add(key)
            self.expect(":", "':' after the key")
            self.peek()
            yield key, at
            closing = self.peek() == "}"
            if not closing:
                self.expect(",", "',' or '}'")
        self.pos += 1

    def kind(self) -> str:
        """What the value at the cursor is, for a message; refuses what is no JSON value."""
        text, pos = self.text, self.pos
        first = text[pos : pos + 1]
        kinds = {"{": "an object", "[": "a list", '"': "a string"}
        if first in kinds:
            return kinds[first]
        for word in ("true", "false", "null"):
            if text.startswith(word, pos):
                return word
        number = _NUMBER.match(text, pos)
        if number is not None:
            return number.group()
        constant = _CONSTANT.match(text, pos)
        if constant is not None:
            raise JsonProblem(f"{constant.group()} is not a JSON value", pos)
        raise JsonProblem("invalid JSON: expecting value", pos)


def read(text: str) -> tuple[list[Entry], dict[str, str]]:
    """The tensor entries (in header order) and metadata of the header ``text``."""
    cursor = _Cursor(text)
    if text.startswith("\ufeff"):
        message = "the header starts with a byte-order mark; it must be plain UTF-8 JSON"
        raise JsonProblem(message, 0)
    if cursor.peek() != "{":
        message = f"the header must be a JSON object, not {cursor.kind()}"
        raise LayoutProblem("safetensors-header", message, pos=cursor.pos)
    entries, metadata = [], {}
    for key, at in cursor.members():
        if key == METADATA_KEY:
            metadata = _metadata(cursor)
        else:
            entries.append(_entry(cursor, key, at))
    if cursor.peek():
        raise JsonProblem("invalid JSON: text after the end of the header object", cursor.pos)
    return entries, metadata


def tile(entries: list[Entry]) -> tuple[TensorTable, int]:
    """Order the tensors by offsets and check that they tile the data (``Metadata::validate``).

    Returns the tensors in that order and where their data ends.
    """
    entries.sort(key=lambda entry: entry[:2])
    ends = [0]
    for begin, end, name, dtype, shape, at in entries:
        if begin != ends[-1] or end < begin:
            message = _offset_message(name, begin, end, ends[-1])
            raise LayoutProblem("safetensors-offsets", message, at)
        nbytes = tensor_nbytes(name, dtype, shape, at)
        if end - begin != nbytes:
            message = (
                f"tensor {name!r}: data_offsets [{begin}, {end}] hold {end - begin} bytes, "
                f"but shape {list(shape)} of {dtype} takes {nbytes}"
            )
            raise LayoutProblem("safetensors-size", message, at)
        ends.append(end)
    names = [entry[2] for entry in entries]
    dtypes = [entry[3] for entry in entries]
    shapes = [entry[4] for entry in entries]
    info = {shape: shape_info(shape, element_count(shape) or 0) for shape in set(shapes)}
    return TensorTable(names, dtypes, [info[shape] for shape in shapes], ends), ends[-1]


def _offset_message(name: str, begin: int, end: int, position: int) -> str:
    where = f"tensor {name!r}: data_offsets [{begin}, {end}]"
    if end < begin:
        return f"{where} end before they begin"
    if begin < position:
        return f"{where} overlap the tensor before, which ends at {position}"
    if position == 0:
        return f"{where} must start at 0: the first tensor's data starts the data region"
    return f"{where} leave a gap: the tensor before ends at {position}"


def _metadata(cursor: _Cursor) -> dict[str, str]:
    if cursor.text.startswith("null", cursor.pos):
        cursor.pos += 4
        return {}  # the reader's Option: null is the same as no metadata
    if cursor.peek() != "{":
        message = f"'__metadata__' must map strings to strings, not be {cursor.kind()}"
        raise LayoutProblem("safetensors-metadata", message, pos=cursor.pos)
    metadata = {}
    for key, _ in cursor.members():
        if cursor.peek() != '"':
            message = f"'__metadata__' value for {key!r} must be a string, not {cursor.kind()}"
            raise LayoutProblem("safetensors-metadata", message, pos=cursor.pos)
        metadata[key] = cursor.string()
    return metadata


def _entry(cursor: _Cursor, name: str, at: int) -> Entry:
    if cursor.peek() != "{":
        message = f"tensor {name!r} must be an object with dtype, shape and data_offsets"
        raise LayoutProblem("safetensors-tensor", f"{message}, not {cursor.kind()}", pos=at)
    fields: dict[str, object] = {}
    for key, _ in cursor.members():
        if key == "dtype":
            fields[key] = _dtype(cursor, name)
        elif key in _FIELDS:
            fields[key] = _integers(cursor, name, key)
        else:  # ignored, as by the format's reader, but still strict JSON
            cursor.pos = strict_json.scan_value(cursor.text, cursor.pos, 2)[1]
    for field in _FIELDS:
        if field not in fields:
            raise LayoutProblem("safetensors-tensor", f"tensor {name!r} has no {field!r}", pos=at)
    dtype, shape, offsets = (fields[field] for field in _FIELDS)
    assert isinstance(dtype, str) and isinstance(shape, tuple) and isinstance(offsets, tuple)
    if len(offsets) != 2:
        message = (
            f"tensor {name!r}: data_offsets must be two numbers [begin, end], not {len(offsets)}"
        )
        raise LayoutProblem("safetensors-tensor", message, pos=at)
    return Entry(offsets[0], offsets[1], name, dtype, shape, at)


def _dtype(cursor: _Cursor, name: str) -> str:
    at = cursor.pos
    if cursor.peek() != '"':
        message = f"tensor {name!r}: dtype must be a string, not {cursor.kind()}"
        raise LayoutProblem("safetensors-dtype", message, pos=at)
    dtype = cursor.string()
    if dtype not in DTYPE_BITS:
        upper = dtype.upper()
        notes = (
            (f"did you mean {upper!r}?",)
            if upper in DTYPE_BITS
            else did_you_mean(dtype, DTYPE_BITS)
        )
        message = f"tensor {name!r}: unknown dtype {dtype!r}"
        raise LayoutProblem("safetensors-dtype", message, pos=at, notes=notes)
    return dtype


def _integers(cursor: _Cursor, name: str, field: str) -> tuple[int, ...]:
    """A list of unsigned 64-bit integers, checked with whole-list operations when well formed."""
    text, at = cursor.text, cursor.pos
    if cursor.peek() != "[":
        message = f"tensor {name!r}: {field} must be a list of integers, not {cursor.kind()}"
        raise LayoutProblem("safetensors-tensor", message, pos=at)
    close = text.find("]", at)
    tokens = list(map(str.strip, text[at + 1 : close].split(","), repeat(_JSON_SPACE)))
    if tokens == [""] and close > 0:
        cursor.pos = close + 1
        return ()
    if close < 0 or not canonical_uints(tokens):
        _refuse_element(cursor, name, field)
    if max(map(len, tokens)) > 19:  # 19 digits always fit in 64 bits
        _refuse_overflow(tokens, name, field, at)
    cursor.pos = close + 1
    return tuple(map(int, tokens))


def _refuse_overflow(tokens: list[str], name: str, field: str, at: int) -> None:
    for index, token in enumerate(tokens):
        if len(token) > 20 or int(token) > U64_MAX:
            message = f"tensor {name!r}: {field}[{index}] = {token} does not fit in 64 bits"
            raise LayoutProblem("safetensors-overflow", message, pos=at)


def _refuse_element(cursor: _Cursor, name: str, field: str) -> None:
    """Find what breaks a malformed integer list, and say what it is."""
    cursor.pos += 1
    for index in itertools.count():
        if index == 0 and cursor.peek() == "]":
            break
        cursor.peek()
        number = _NUMBER.match(cursor.text, cursor.pos)
        if number is None or not number.group().isdigit():
            message = f"tensor {name!r}: {field}[{index}] must be a non-negative integer, not "
            raise LayoutProblem("safetensors-tensor", message + cursor.kind(), pos=cursor.pos)
        cursor.pos = number.end()
        if cursor.peek() == "]":
            break
        cursor.expect(",", "',' or ']'")
    raise JsonProblem("invalid JSON: malformed list", cursor.pos)
