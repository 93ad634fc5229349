"""A strict JSON reader that keeps where every value is (for ``mir.json``).

Python's ``json.loads`` keeps the last of duplicate keys, accepts ``NaN``/``Infinity`` and drops
positions, so this reader parses the text itself: RFC 8259 JSON only; UTF-8 without a byte-order
mark; duplicate keys at any depth, lone surrogates, overflowing numbers and nesting deeper than
:data:`MAX_DEPTH` are errors. Every rejection is a positioned diagnostic.
"""

from __future__ import annotations

import json
import json.decoder
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from compiler.diagnostics import Diagnostic, MircError, Span

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

JsonPath = tuple[str | int, ...]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = (("true", True), ("false", False), ("null", None))
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# The standard library's string scanner (C when available): escapes and control characters.
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


@dataclass(frozen=True)
class JsonDocument:
    """A parsed JSON file: its value and the offset of every value and key in the text."""

    file: str
    text: str
    value: Any
    offsets: dict[JsonPath, int] = field(repr=False)
    key_offsets: dict[JsonPath, int] = field(repr=False)

    def span(self, path: JsonPath, *, key: bool = False) -> Span:
        """The span of the value at ``path`` (or of its key), else of the nearest parent."""
        table = self.key_offsets if key else self.offsets
        for depth in range(len(path), -1, -1):
            offset = table.get(path[:depth], self.offsets.get(path[:depth]))
            if offset is not None:
                return Span.at_offset(self.file, self.text, offset)
        return Span.at_offset(self.file, self.text, 0)


def load_json(data: bytes, file: str) -> JsonDocument:
    """Parse ``data`` as strict JSON; a rejected file raises :class:`MircError`."""
    if len(data) > MAX_BYTES:
        raise _error(file, "", 0, f"file is {len(data)} bytes; at most {MAX_BYTES} allowed")
    if data.startswith(b"\xef\xbb\xbf"):
        raise _error(file, "", 0, "byte-order mark at the start of a JSON file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8", "replace")
        message = f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded"
        raise _error(file, before, len(before), message) from None
    return _Reader(file, text).document()


def _error(file: str, text: str, offset: int, message: str) -> MircError:
    span = Span.at_offset(file, text, offset)
    return MircError([Diagnostic.error("json", message, span)])


class _Reader:
    """Recursive descent over the text, recording offsets as it goes."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.offsets: dict[JsonPath, int] = {}
        self.key_offsets: dict[JsonPath, int] = {}

    def document(self) -> JsonDocument:
        start = self._skip(0)
        if start == len(self.text):
            self._fail(start, "empty file: expected a JSON value")
        value, end = self._value(start, ())
        end = self._skip(end)
        if end != len(self.text):
            self._fail(end, "extra data after the JSON value")
        return JsonDocument(self.file, self.text, value, self.offsets, self.key_offsets)

    def _fail(self, offset: int, message: str) -> NoReturn:
        raise _error(self.file, self.text, offset, message)

    def _expected(self, offset: int, closing: str, what: str) -> str:
        if self.text.startswith(closing, offset):
            return f"trailing comma before {closing!r} (JSON does not allow one)"
        return f"expected {what}"

    def _skip(self, offset: int) -> int:
        match = _WHITESPACE.match(self.text, offset)
        return match.end() if match else offset

    def _value(self, offset: int, path: JsonPath) -> tuple[Any, int]:
        if len(path) > MAX_DEPTH:
            self._fail(offset, f"nesting deeper than {MAX_DEPTH} levels")
        self.offsets[path] = offset
        char = self.text[offset : offset + 1]
        if char == "{":
            return self._object(offset, path)
        if char == "[":
            return self._array(offset, path)
        if char == '"':
            return self._string(offset)
        for word, literal in _LITERALS:
            if self.text.startswith(word, offset):
                return literal, offset + len(word)
        return self._number(offset)

    def _object(self, offset: int, path: JsonPath) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        position = self._skip(offset + 1)
        if self.text.startswith("}", position):
            return result, position + 1
        while True:
            if not self.text.startswith('"', position):
                self._fail(position, self._expected(position, "}", "a string key in double quotes"))
            key_start = position
            key, position = self._string(position)
            if key in result:
                first = Span.at_offset(self.file, self.text, self.key_offsets[(*path, key)])
                where = f"first at line {first.line}, column {first.col}"
                self._fail(key_start, f"duplicate key {key!r} ({where})")
            self.key_offsets[(*path, key)] = key_start
            position = self._skip(position)
            if not self.text.startswith(":", position):
                self._fail(position, "expected ':' after an object key")
            value, position = self._value(self._skip(position + 1), (*path, key))
            result[key] = value
            position = self._skip(position)
            if self.text.startswith("}", position):
                return result, position + 1
            if not self.text.startswith(",", position):
                self._fail(position, "expected ',' or '}' after an object member")
            position = self._skip(position + 1)

    def _array(self, offset: int, path: JsonPath) -> tuple[list[Any], int]:
        result: list[Any] = []
        position = self._skip(offset + 1)
        if self.text.startswith("]", position):
            return result, position + 1
        while True:
            if self.text.startswith("]", position):
                self._fail(position, self._expected(position, "]", "a value"))
            value, position = self._value(position, (*path, len(result)))
            result.append(value)
            position = self._skip(position)
            if self.text.startswith("]", position):
                return result, position + 1
            if not self.text.startswith(",", position):
                self._fail(position, "expected ',' or ']' after an array item")
            position = self._skip(position + 1)

    def _string(self, offset: int) -> tuple[str, int]:
        try:
            value, end = _scanstring(self.text, offset + 1, True)
        except json.JSONDecodeError as exc:
            self._fail(exc.pos, f"bad string: {exc.msg}")
        surrogate = _SURROGATE.search(value)
        if surrogate is not None:
            self._fail(offset, "string holds a lone surrogate escape (not valid Unicode)")
        return value, end

    def _number(self, offset: int) -> tuple[int | float, int]:
        if self.text.startswith(("NaN", "Infinity", "-Infinity"), offset):
            self._fail(offset, "NaN and Infinity are not JSON numbers")
        match = _NUMBER.match(self.text, offset)
        if match is None or match.end() == offset:
            self._fail(offset, "expected a JSON value (object, array, string, number, literal)")
        token = match.group()
        if match.group(1) is None and match.group(2) is None:
            if len(token) > 400:
                self._fail(offset, "integer has more than 400 digits")
            return int(token), match.end()
        number = float(token)
        if not math.isfinite(number):
            self._fail(offset, f"number {token} is too large")
        return number, match.end()
