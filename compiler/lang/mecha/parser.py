"""Parsing Mecha recipes into the syntax tree of :mod:`compiler.lang.mecha.ast`.

The grammar (``compiler/grammars/mecha.lark``) defines the language. Well-formed lines take a fast
path — compiled regular expressions that accept exactly the grammar's lines (a property test keeps
the two in step) — because a 10,000-line recipe must parse in a fraction of a second. If any line
is refused, the whole text goes through the grammar, so syntax errors always come from it. Either
way the tokens of each line go through one builder, which checks what the grammar leaves open:
which commands exist and their shape, numbers that do not fit, the version header, duplicate and
misplaced keyword arguments.
"""

from __future__ import annotations

import math
import re

from compiler.diagnostics import Diagnostic, DiagnosticSink, MircError, Span, did_you_mean
from compiler.gcpause import paused_gc
from compiler.lang.mecha.ast import (
    FORMAT_VERSION,
    Bool,
    Comment,
    Dict,
    Expression,
    Float,
    Int,
    Item,
    Keyword,
    Line,
    Literal,
    Merge,
    Model,
    Null,
    Pos,
    Recipe,
    Ref,
    Str,
    Value,
)
from compiler.lang.mecha.syntax import LineTokens, grammar_lines, value_kind

MAX_BYTES = 1 << 20
COMMANDS = ("model", "merge", "call", "literal", "dict")
INT_RANGE = (-(2**63), 2**63 - 1)
BOM = "\ufeff"

_KEY = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_STRING = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]|\\["\\])*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_REF = r"&(?:0|[1-9][0-9]*)"
_CONSTANT = r"null|true|false"


_VALUE = "|".join((_STRING, _REF, _NUMBER, _CONSTANT))


def _argument(group: str) -> str:
    """Spaces, an optional ``key=`` and one value, then a space, a tab or the line's end;
    ``group`` opens the key's and the value's groups."""
    return rf"[ \t]+{group}{_KEY}=)?{group}{_VALUE})(?![^ \t])"


_ARG_RE = re.compile(_argument("("))
_EXPRESSION_RE = re.compile(rf"[ \t]*([A-Za-z_][A-Za-z0-9_]*)((?:{_argument('(?:')})*)[ \t]*")
_VERSION_RE = re.compile(r"[ \t]*(version)[ \t]+([0-9]+\.[0-9]+\.[0-9]+)[ \t]*")
_COMMENT_RE = re.compile(r"[ \t]*(#[^\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]*)")
_UNESCAPE_RE = re.compile(r"\\(.)")


def parse_recipe(text: str, file: str = "<recipe>") -> Recipe:
    """Parse recipe ``text``; a rejected recipe raises :class:`MircError` with its diagnostics.

    A leading byte-order mark, CRLF line ends, blank lines, indentation and tabs are accepted.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        message = f"recipe is {size} bytes; at most {MAX_BYTES} (1 MiB) allowed"
        raise MircError([Diagnostic.error("recipe-too-large", message, Span(file))])
    text = text.removeprefix(BOM)
    with paused_gc():
        lines = fast_lines(text)
        if lines is None:
            lines = grammar_lines(text, file)
        return _Builder(file).build(lines)


def fast_lines(text: str) -> list[LineTokens] | None:
    """The tokens of each non-blank line, or ``None`` if any line is not plainly well-formed."""
    segments = text.split("\n")
    last = len(segments)
    lines: list[LineTokens] = []
    for number, segment in enumerate(segments, 1):
        line = segment[:-1] if number < last and segment.endswith("\r") else segment
        tokens = _expression_tokens(line) or _other_tokens(line)
        if tokens is None:
            return None
        if tokens:
            lines.append(LineTokens(number, line, tokens))
    return lines


def _expression_tokens(line: str) -> list[tuple[str, str, int]] | None:
    match = _EXPRESSION_RE.fullmatch(line)
    if match is None or match.group(1) == "version":
        return None
    tokens = [("COMMAND", match.group(1), match.start(1) + 1)]
    for arg in _ARG_RE.finditer(line, match.end(1), match.end(2)):
        key, value = arg.groups()
        start = arg.start(2)
        if key is not None:
            tokens.append(("KEY", key, start - len(key) + 1))
        tokens.append((value_kind(value), value, start + 1))
    return tokens


def _other_tokens(line: str) -> list[tuple[str, str, int]] | None:
    """A comment, the version line or a blank line (no tokens); ``None`` for anything else."""
    match = _COMMENT_RE.fullmatch(line)
    if match is not None:
        return [("COMMENT", match.group(1), match.start(1) + 1)]
    match = _VERSION_RE.fullmatch(line)
    if match is not None:
        version = ("VERSION", match.group(2), match.start(2) + 1)
        return [("COMMAND", "version", match.start(1) + 1), version]
    return [] if not line.strip(" \t") else None


class _Builder:
    """Turns line tokens into a :class:`Recipe`, collecting every problem it finds."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.sink = DiagnosticSink()
        self.items: list[Item] = []
        self.expressions = 0
        self.attempted = 0
        self.version: str | None = None
        self.line = Line(file, 0, "")

    def build(self, lines: list[LineTokens]) -> Recipe:
        for line in lines:
            self.line = Line(self.file, line.number, line.source)
            self._line(line.tokens)
        if self.attempted == 0:
            message = "the recipe has no expressions; its last expression is its output"
            self.sink.error("recipe-empty", message, Span(self.file, 1, 1))
        self.sink.raise_if_errors()
        return Recipe(tuple(self.items), self.version, self.file)

    def _pos(self, col: int, text: str) -> Pos:
        return Pos(self.line, col, col + len(text))

    def _line(self, tokens: list[tuple[str, str, int]]) -> None:
        kind, text, col = tokens[0]
        if kind == "COMMENT":
            self.items.append(Comment(text[1:].rstrip(" \t"), self._pos(col, text)))
        elif text == "version":
            self._version(tokens[1])
        else:
            self.attempted += 1
            expression = self._expression(tokens)
            if expression is not None:
                self.items.append(expression)
                self.expressions += 1

    def _version(self, token: tuple[str, str, int]) -> None:
        _, version, col = token
        span = self._pos(col, version).span
        if self.version is not None:
            self.sink.error("recipe-version", "a second version line", span)
        elif self.expressions:
            message = "the version line must come before the first expression"
            self.sink.error("recipe-version", message, span)
        elif version != FORMAT_VERSION:
            message = f"unsupported recipe format version {version}; mirc reads {FORMAT_VERSION}"
            self.sink.error("recipe-version", message, span)
        self.version = version

    def _expression(self, tokens: list[tuple[str, str, int]]) -> Expression | None:
        _, command, col = tokens[0]
        pos = self._pos(col, command)
        args, kwargs = self._arguments(tokens)
        if command == "model" or command in ("merge", "call"):
            head = args[0] if args else None
            if not isinstance(head, Str):
                self._missing_head(command, pos if head is None else head.pos)
                return None
            if command == "model":
                return Model(head, args[1:], kwargs, pos)
            return Merge(head, args[1:], kwargs, pos)
        if command == "literal":
            return Literal(args, kwargs, pos)
        if command == "dict":
            if args:
                message = "dict takes only key=value pairs"
                self.sink.error("recipe-shape", message, args[0].span)
            return Dict(kwargs, pos)
        notes = did_you_mean(command, (*COMMANDS, "version"))
        message = f"unknown command '{command}'; a line is model, merge, literal, dict or version"
        self.sink.error("recipe-command", message, pos.span, *notes)
        return None

    def _missing_head(self, command: str, pos: Pos) -> None:
        what = "a quoted path" if command == "model" else "the method name in quotes"
        example = 'model "a.safetensors"' if command == "model" else 'merge "weighted_sum" &0 &1'
        message = f"{command} takes {what} first, e.g. {example}"
        self.sink.error("recipe-shape", message, pos.span)

    def _arguments(
        self, tokens: list[tuple[str, str, int]]
    ) -> tuple[tuple[Value, ...], tuple[Keyword, ...]]:
        """The line's positional and keyword arguments, in the order given."""
        line = self.line
        args: list[Value] = []
        kwargs: dict[str, Keyword] = {}
        key: tuple[str, int] | None = None
        for kind, text, col in tokens[1:]:
            if kind == "KEY":
                key = (text, col)
                continue
            value = self._value(kind, text, Pos(line, col, col + len(text)))
            if key is not None:
                self._keyword(key, value, kwargs)
                key = None
                continue
            if kwargs:
                message = "a positional argument cannot follow keyword arguments"
                self.sink.error("recipe-shape", message, value.span)
            args.append(value)
        return tuple(args), tuple(kwargs.values())

    def _keyword(self, key: tuple[str, int], value: Value, kwargs: dict[str, Keyword]) -> None:
        text, col = key
        name = text[:-1]
        pos = Pos(self.line, col, value.pos.end_col)
        previous = kwargs.get(name)
        if previous is not None:
            note = f"first given at column {previous.pos.col}"
            self.sink.error("recipe-duplicate-keyword", f"'{name}' is given twice", pos.span, note)
            return
        kwargs[name] = Keyword(name, value, pos)

    def _value(self, kind: str, text: str, pos: Pos) -> Value:
        if kind == "STRING":
            body = text[1:-1]
            return Str(_UNESCAPE_RE.sub(r"\1", body) if "\\" in body else body, pos)
        if kind == "REF":
            return self._ref(text, pos)
        if kind == "NUMBER":
            return self._number(text, pos)
        if text == "null":
            return Null(pos)
        return Bool(text == "true", pos)

    def _ref(self, text: str, pos: Pos) -> Ref:
        if len(text) > 10:
            self.sink.error("recipe-reference", f"reference {text} is out of range", pos.span)
            return Ref(0, pos)
        return Ref(int(text[1:]), pos)

    def _number(self, text: str, pos: Pos) -> Int | Float:
        if "." not in text and "e" not in text and "E" not in text:
            value = int(text) if len(text) <= 25 else INT_RANGE[1] + 1
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                message = f"integer {text} is out of range; recipe integers fit in 64 bits"
                self.sink.error("recipe-number", message, pos.span)
            return Int(value, pos)
        number = float(text)
        if number in (math.inf, -math.inf):
            message = f"number {text} is too large for a 64-bit float"
            self.sink.error("recipe-number", message, pos.span)
        elif number == 0.0 and any(c in "123456789" for c in re.split("[eE]", text)[0]):
            message = f"number {text} is too small for a 64-bit float (it would read as 0)"
            self.sink.error("recipe-number", message, pos.span)
        return Float(number, pos)
