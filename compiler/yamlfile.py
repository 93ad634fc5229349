"""A hardened YAML 1.2 loader for spec files (RELIABILITY rule 4).

It reads the parser's event stream (libyaml through PyYAML when available) and builds plain
values itself, so that nothing YAML 1.1 or implicit slips through: one document; no tags, anchors,
aliases or merge keys; string keys only; duplicate keys refused; depth and size capped; plain
scalars resolved by the YAML 1.2 core schema (``no``/``on`` and timestamps stay strings; numbers
with leading zeros, ``.inf`` and ``.nan`` are refused); and every node keeps its line and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compiler.diagnostics import Diagnostic, MircError, Span

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64

# A path into a document: mapping keys and sequence indices from the root.
NodePath = tuple[str | int, ...]

_CLoader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|(0|[1-9][0-9]*)(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+(\.[0-9]*)?([eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_OTHER_NUMBER = re.compile(r"[-+]?0[oxOX][0-9a-fA-F_]+")


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based


@dataclass(frozen=True)
class YamlDocument:
    """A loaded spec file: its plain value and the position of every node and key."""

    file: str
    text: str
    value: Any
    positions: dict[NodePath, Position] = field(repr=False)
    key_positions: dict[NodePath, Position] = field(repr=False)

    def span(self, path: NodePath, *, key: bool = False) -> Span:
        """The span of the node at ``path`` (or of its key), falling back to the nearest parent."""
        table = self.key_positions if key else self.positions
        for depth in range(len(path), -1, -1):
            position = table.get(path[:depth]) or self.positions.get(path[:depth])
            if position is not None:
                return Span.in_text(self.file, self.text, position.line, position.col)
        return Span.in_text(self.file, self.text, 1, 1)


def load_yaml_file(path: Path, display: str | None = None) -> YamlDocument:
    """Read and load ``path``; a rejected file raises :class:`MircError` (positioned)."""
    name = display or str(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise _reject(name, "", 1, 1, f"file is {size} bytes; spec files are at most {MAX_BYTES}")
    return load_yaml(path.read_bytes(), name)


def load_yaml(data: bytes, file: str) -> YamlDocument:
    """Load one YAML document from ``data`` (UTF-8) with the rules in the module docstring."""
    if len(data) > MAX_BYTES:
        raise _reject(file, "", 1, 1, f"file is {len(data)} bytes; at most {MAX_BYTES} allowed")
    text = _decode(data, file)
    return _Builder(file, text).build()


def _decode(data: bytes, file: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        raise _reject(
            file, before, line, col, f"not UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded"
        ) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        offset = text.index("\x00")
        span = Span.at_offset(file, text, offset)
        raise MircError([Diagnostic.error("yaml-syntax", "NUL character in YAML text", span)])
    return text


def _reject(file: str, text: str, line: int, col: int, message: str) -> MircError:
    return MircError([Diagnostic.error("yaml", message, Span.in_text(file, text, line, col))])


class _Builder:
    """Builds plain values from parser events, checking every rule as it goes."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.positions: dict[NodePath, Position] = {}
        self.key_positions: dict[NodePath, Position] = {}

    def build(self) -> YamlDocument:
        events = self._events()
        value: Any = None
        documents = 0
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    self._fail(event, "a spec file holds one YAML document; found a second")
                value = self._node(next(events), events, ())
        return YamlDocument(self.file, self.text, value, self.positions, self.key_positions)

    def _events(self) -> Iterator[Any]:
        parser = _CLoader(self.text)
        try:
            while parser.check_event():
                yield parser.get_event()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise self._syntax(f"YAML syntax: {exc.problem or exc.context}", line, col) from None
        except yaml.reader.ReaderError as exc:
            span = Span.at_offset(self.file, self.text, exc.position)
            raise self._syntax(
                f"character {exc.character!r} is not allowed in YAML", span.line, span.col
            ) from None
        finally:
            parser.dispose()

    def _syntax(self, message: str, line: int, col: int) -> MircError:
        span = Span.in_text(self.file, self.text, line, col)
        return MircError([Diagnostic.error("yaml-syntax", message, span)])

    def _fail(self, event: Any, message: str, code: str = "yaml") -> None:
        mark = event.start_mark
        span = Span.in_text(self.file, self.text, mark.line + 1, mark.column + 1)
        raise MircError([Diagnostic.error(code, message, span)])

    def _node(self, event: Any, events: Iterator[Any], path: NodePath) -> Any:
        if len(path) > MAX_DEPTH:
            self._fail(event, f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(event, yaml.AliasEvent):
            self._fail(event, "aliases (*name) are not allowed in spec files")
        if event.anchor is not None:
            self._fail(event, "anchors (&name) are not allowed in spec files")
        if event.tag is not None:  # the parser reports a tag only when the text spells one
            self._fail(event, f"tags ({event.tag}) are not allowed in spec files")
        mark = event.start_mark
        self.positions[path] = Position(mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event)
        if isinstance(event, yaml.SequenceStartEvent):
            return self._sequence(events, path)
        return self._mapping(events, path)

    def _sequence(self, events: Iterator[Any], path: NodePath) -> list[Any]:
        items: list[Any] = []
        for event in events:
            if isinstance(event, yaml.SequenceEndEvent):
                return items
            items.append(self._node(event, events, (*path, len(items))))
        return items

    def _mapping(self, events: Iterator[Any], path: NodePath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for event in events:
            if isinstance(event, yaml.MappingEndEvent):
                return result
            key = self._key(event)
            if key in result:
                first = self.key_positions[(*path, key)]
                self._fail(
                    event,
                    f"duplicate key {key!r} (first at line {first.line}, column {first.col})",
                    "yaml-duplicate-key",
                )
            mark = event.start_mark
            self.key_positions[(*path, key)] = Position(mark.line + 1, mark.column + 1)
            result[key] = self._node(next(events), events, (*path, key))
        return result

    def _key(self, event: Any) -> str:
        if isinstance(event, yaml.AliasEvent):
            self._fail(event, "aliases (*name) are not allowed in spec files")
        if not isinstance(event, yaml.ScalarEvent):
            self._fail(event, "mapping keys must be plain strings, not collections")
        if event.anchor is not None:
            self._fail(event, "anchors (&name) are not allowed in spec files")
        if event.tag is not None:
            self._fail(event, f"tags ({event.tag}) are not allowed in spec files")
        if _is_plain(event) and event.value == "<<":
            self._fail(event, "merge keys (<<) are not allowed in spec files")
        key = self._scalar(event)
        if not isinstance(key, str):
            self._fail(event, f"mapping keys must be strings; quote {event.value!r}")
        return str(key)

    def _scalar(self, event: Any) -> Any:
        if not _is_plain(event):
            return event.value
        return self._resolve_plain(event)

    def _resolve_plain(self, event: Any) -> Any:
        try:
            return resolve_plain(event.value)
        except ValueError as exc:
            self._fail(event, str(exc))


def resolve_plain(value: str) -> Any:
    """What the plain (unquoted) scalar ``value`` loads as under the YAML 1.2 core schema:
    None, a bool, an int, a float, or the string itself.

    Raises ``ValueError`` (with the message a spec author sees) for the forms this loader
    refuses: leading zeros, base prefixes, non-finite and overflowing numbers. Writers use it to
    decide when a string must be quoted to stay a string.
    """
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _LEADING_ZERO.fullmatch(value) or _OTHER_NUMBER.fullmatch(value):
        raise ValueError(f"number {value!r} has a leading zero or a base prefix; quote it")
    if _NON_FINITE.fullmatch(value):
        raise ValueError(f"{value!r} is not a finite number; spec numbers must be finite")
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise ValueError(f"number {value!r} is too large")
        return number
    return value


def _is_plain(event: Any) -> bool:
    return not event.style and bool(event.implicit[0])
