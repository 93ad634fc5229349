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
    Literal,
    Merge,
    Model,
    Null,
    Recipe,
    Ref,
    Str,
    Value,
)
from compiler.lang.mecha.syntax import LineTokens, grammar_lines

MAX_BYTES = 1 << 20
COMMANDS = ("model", "merge", "call", "literal", "dict")
INT_RANGE = (-(2**63), 2**63 - 1)
BOM = "\ufeff"

_KEY = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_STRING = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]|\\["\\])*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_REF = r"&(?:0|[1-9][0-9]*)"
_CONSTANT = r"null|true|false"


def _argument_pattern(group: str) -> str:
    """Spaces, an optional ``key=`` and one value; ``group`` opens each part's group."""
    values = "|".join(f"{group}{part})" for part in (_STRING, _REF, _NUMBER, _CONSTANT))
    return rf"[ \t]+(?:{group}{_KEY})=)?(?:{values})(?![^ \t])"


_ARG_RE = re.compile(_argument_pattern("("))
_EXPRESSION_RE = re.compile(
    rf"[ \t]*([A-Za-z_][A-Za-z0-9_]*)((?:{_argument_pattern('(?:')})*)[ \t]*"
)
_VERSION_RE = re.compile(r"[ \t]*(version)[ \t]+([0-9]+\.[0-9]+\.[0-9]+)[ \t]*")
_COMMENT_RE = re.compile(r"[ \t]*(#[^\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]*)")
_GROUP_KINDS = ("KEY", "STRING", "REF", "NUMBER", "CONSTANT")
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
        group = arg.lastindex or 0
        if arg.start(1) >= 0:
            tokens.append(("KEY", arg.group(1) + "=", arg.start(1) + 1))
        tokens.append((_GROUP_KINDS[group - 1], arg.group(group), arg.start(group) + 1))
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

    def build(self, lines: list[LineTokens]) -> Recipe:
        for line in lines:
            self._line(line)
        if self.attempted == 0:
            message = "the recipe has no expressions; its last expression is its output"
            self.sink.error("recipe-empty", message, Span(self.file, 1, 1))
        self.sink.raise_if_errors()
        return Recipe(tuple(self.items), self.version, self.file)

    def _line(self, line: LineTokens) -> None:
        kind, text, col = line.tokens[0]
        if kind == "COMMENT":
            self.items.append(Comment(text[1:].rstrip(" \t"), self._span(line, col, len(text))))
        elif text == "version":
            self._version(line)
        else:
            self.attempted += 1
            expression = self._expression(line)
            if expression is not None:
                self.items.append(expression)
                self.expressions += 1

    def _span(self, line: LineTokens, col: int, width: int) -> Span:
        return Span(self.file, line.number, col, line.number, col + width, line.source)

    def _version(self, line: LineTokens) -> None:
        _, version, col = line.tokens[1]
        span = self._span(line, col, len(version))
        if self.version is not None:
            self.sink.error("recipe-version", "a second version line", span)
        elif self.expressions:
            message = "the version line must come before the first expression"
            self.sink.error("recipe-version", message, span)
        elif version != FORMAT_VERSION:
            message = f"unsupported recipe format version {version}; mirc reads {FORMAT_VERSION}"
            self.sink.error("recipe-version", message, span)
        self.version = version

    def _expression(self, line: LineTokens) -> Expression | None:
        _, command, col = line.tokens[0]
        span = self._span(line, col, len(command))
        args, kwargs = self._arguments(line)
        if command == "model" or command in ("merge", "call"):
            head = args[0] if args else None
            if not isinstance(head, Str):
                self._missing_head(command, span, head)
                return None
            if command == "model":
                return Model(head, args[1:], kwargs, span)
            return Merge(head, args[1:], kwargs, span)
        if command == "literal":
            return Literal(args, kwargs, span)
        if command == "dict":
            if args:
                message = "dict takes only key=value pairs"
                self.sink.error("recipe-shape", message, args[0].span)
            return Dict(kwargs, span)
        notes = did_you_mean(command, (*COMMANDS, "version"))
        message = f"unknown command '{command}'; a line is model, merge, literal, dict or version"
        self.sink.error("recipe-command", message, span, *notes)
        return None

    def _missing_head(self, command: str, span: Span, head: Value | None) -> None:
        what = "a quoted path" if command == "model" else "the method name in quotes"
        example = 'model "a.safetensors"' if command == "model" else 'merge "weighted_sum" &0 &1'
        message = f"{command} takes {what} first, e.g. {example}"
        self.sink.error("recipe-shape", message, span if head is None else head.span)

    def _arguments(self, line: LineTokens) -> tuple[tuple[Value, ...], tuple[Keyword, ...]]:
        args: list[Value] = []
        kwargs: dict[str, Keyword] = {}
        tokens = line.tokens
        index = 1
        while index < len(tokens):
            kind, text, col = tokens[index]
            if kind == "KEY":
                self._keyword(line, tokens[index], tokens[index + 1], kwargs)
                index += 2
                continue
            value = self._value(line, kind, text, col)
            if kwargs:
                message = "a positional argument cannot follow keyword arguments"
                self.sink.error("recipe-shape", message, value.span)
            args.append(value)
            index += 1
        return tuple(args), tuple(kwargs.values())

    def _keyword(
        self,
        line: LineTokens,
        key: tuple[str, str, int],
        value_token: tuple[str, str, int],
        kwargs: dict[str, Keyword],
    ) -> None:
        _, key_text, col = key
        name = key_text[:-1]
        value = self._value(line, *value_token)
        span = self._span(line, col, len(key_text) + len(value_token[1]))
        previous = kwargs.get(name)
        if previous is not None:
            note = f"first given at column {previous.span.col}"
            self.sink.error("recipe-duplicate-keyword", f"'{name}' is given twice", span, note)
            return
        kwargs[name] = Keyword(name, value, span)

    def _value(self, line: LineTokens, kind: str, text: str, col: int) -> Value:
        span = self._span(line, col, len(text))
        if kind == "STRING":
            body = text[1:-1]
            return Str(_UNESCAPE_RE.sub(r"\1", body) if "\\" in body else body, span)
        if kind == "REF":
            return self._ref(text, span)
        if kind == "NUMBER":
            return self._number(text, span)
        if text == "null":
            return Null(span)
        return Bool(text == "true", span)

    def _ref(self, text: str, span: Span) -> Ref:
        if len(text) > 10:
            self.sink.error("recipe-reference", f"reference {text} is out of range", span)
            return Ref(0, span)
        return Ref(int(text[1:]), span)

    def _number(self, text: str, span: Span) -> Int | Float:
        if not any(c in text for c in ".eE"):
            value = int(text) if len(text) <= 25 else INT_RANGE[1] + 1
            if not INT_RANGE[0] <= value <= INT_RANGE[1]:
                message = f"integer {text} is out of range; recipe integers fit in 64 bits"
                self.sink.error("recipe-number", message, span)
            return Int(value, span)
        number = float(text)
        if math.isinf(number):
            message = f"number {text} is too large for a 64-bit float"
            self.sink.error("recipe-number", message, span)
        elif number == 0.0 and any(c in "123456789" for c in re.split("[eE]", text)[0]):
            message = f"number {text} is too small for a 64-bit float (it would read as 0)"
            self.sink.error("recipe-number", message, span)
        return Float(number, span)
