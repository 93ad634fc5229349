"""Reading a recipe with the grammar (``compiler/grammars/mecha.lark``) and wording its errors.

The grammar is the definition of the language; the parser's fast path only ever accepts what it
accepts. Text the fast path refuses comes here: the grammar either parses it (and its tokens are
handed to the same builder) or names the first problem. A problem is worded, in this order, by
the character it is at (a control character, a malformed string), by the word it is in (a
malformed number, ``inf``, ``None``, a bare word), or by the parser state it stops in, matched
against the labelled bad examples in :data:`MECHA_ERRORS`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.grammar import lalr_parser

if TYPE_CHECKING:  # lark is imported when the grammar is used: the fast path never needs it
    from lark import Token, Tree, UnexpectedInput

SYNTAX = "recipe-syntax"


class LineTokens(NamedTuple):
    """The tokens of one non-blank line: ``(kind, text, column)``, columns 1-based."""

    number: int
    source: str
    tokens: list[tuple[str, str, int]]


# Labelled bad examples: the parser state each one stops in names the message (lark's
# match_examples). tests/test_mecha_parse.py walks this table and the three below.
MECHA_ERRORS: dict[str, list[str]] = {
    "a line is an expression (model, merge, literal or dict), a version line or a # comment": [
        "0.5",
        '"a.safetensors"',
        '&0 "x"',
        'model "a"\n  1',
        "-",
        "'a'",
        "=",
        "\\",
        ".5",
        "¿",
    ],
    "expected the version number after 'version' (version 0.1.0)": [
        "version",
        "version 0.1",
        'version "0.1.0"',
        "version\t",
    ],
    "unexpected text after the version number": ["version 0.1.0 x", "version 0.1.0.1"],
    "expected a value right after '=' (no spaces): a quoted string, a number, &N, "
    "null, true or false": [
        'model "a" alpha=',
        'model "a" alpha= 1',
        'model "a" alpha=\n',
        "dict a=b=1",
    ],
    "separate arguments with spaces": [
        'model "a""b"',
        'model "a"&0',
        'merge "m" &0"x"',
        'merge "m" &0 null"x"',
        "dict a=1b=2",
        'dict a="x"b=2',
    ],
    "expected a value: a quoted string, a number, &N, null, true, false or key=value": [
        'model "a" @x',
        'merge "m" &0 ~',
        'merge "m" &0 (1)',
        'merge "m" &0 [1, 2]',
        "dict a=1 {",
    ],
    "expected a space after the command": ['model"a"', "dict@", 'merge("m")'],
}


class Worded(NamedTuple):
    """A problem recognised by a pattern, its message (a template) and bad examples of it."""

    pattern: str
    message: str
    examples: tuple[str, ...]


# A character no token may contain, worded with its code point.
MECHA_CHAR_ERRORS: list[Worded] = [
    Worded(
        r"\r",
        "a carriage return must be followed by a line feed (CR alone does not end a line)",
        ('model "a"\r', 'model "a"\rmodel "b"', 'model "a" \r x'),
    ),
    Worded(
        r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]",
        "control character {code} is not allowed in a recipe (only tabs and line ends)",
        ('model "a" \x0c', "model\x00", 'model "a"\n\x0bmodel "b"', "# ok\n\u2028"),
    ),
    Worded(
        r"[\ud800-\udfff]",
        "{code} is a lone surrogate, not a character; a recipe is UTF-8 text",
        ("model \ud800", "# \udfff"),
    ),
    Worded(
        r"[^\S \t\n\r]",
        "{code} is not a separator; separate arguments with spaces or tabs",
        ('model\xa0"a"', 'model "a"\u3000&0'),
    ),
    Worded(
        r"#",
        "a comment takes a whole line; '#' cannot follow an expression",
        ('model "a" # the base', 'model "a" #'),
    ),
]

# A word in argument position (the value after ``key=``), worded by what it looks like; each
# pattern must match up to a space, a tab or the end of the line.
MECHA_WORD_ERRORS: list[Worded] = [
    Worded(
        r"[-+]?(?i:inf|infinity|nan)",
        "'{word}' is not allowed: recipe numbers are finite (no inf or nan)",
        ('merge "m" &0 inf', 'merge "m" &0 alpha=-inf', 'merge "m" &0 NaN', "dict a=+Infinity"),
    ),
    Worded(
        r"[-+]?\.?[0-9][^ \t=\"]*|[-+]\.[^ \t=\"]*|[-+]",
        "malformed number '{word}': write numbers like 12, -0.5 or 1e-05 "
        "(no '+', '_' or leading zeros; digits on both sides of '.')",
        (
            'merge "m" &0 1_0',
            'merge "m" &0 alpha=007',
            "dict a=.5",
            "dict a=5.",
            "dict a=+1",
            "dict a=1e",
            "dict a=1.2.3",
            "dict a=0x10",
            "dict a=-",
            "dict a=1-2",
        ),
    ),
    Worded(
        r"&[^ \t=\"]*",
        "malformed reference '{word}': write &N, N an earlier line's number (&0, &12)",
        ('merge "m" &01', 'merge "m" &a', 'merge "m" &', 'merge "m" &-1', 'merge "m" &0&1'),
    ),
    Worded(
        r"'[^ \t]*",
        'strings are quoted with double quotes: "..."',
        ("model 'a'", "dict a='x'"),
    ),
    Worded(
        r"(?:None|True|False|NULL|Null|TRUE|FALSE|nil|none|undefined)",
        "'{word}' is not a constant; the constants are null, true and false",
        ('merge "m" &0 None', "dict a=True b=1", "dict a=NULL"),
    ),
    Worded(
        r"[A-Za-z_][\w.\-]*[ \t]+=[^ \t]*",
        "no spaces around '=' in a keyword argument (alpha=0.5)",
        ('merge "m" &0 alpha = 0.5', 'merge "m" &0 alpha =0.5', "dict a =1"),
    ),
    Worded(
        r"=[^ \t]*",
        "'=' must follow a keyword name directly (alpha=0.5)",
        ('merge "m" &0 =0.5', 'merge "m" &0 ='),
    ),
    Worded(
        r"[A-Za-z_][\w.\-]*",
        "bare word '{word}': quote strings (\"{word}\"); the constants are null, true and false",
        ("model a.safetensors", 'merge "m" &0 nul', "dict a=b", 'merge "m" &0 alpha'),
    ),
]

# Problems inside a string, found by reading it character by character.
MECHA_STRING_ERRORS: dict[str, list[str]] = {
    "unknown escape '{escape}' in a string; the only escapes are \\\\ and \\\"": [
        'model "a\\n"',
        'model "C:\\models\\x"',
        'model "a\\',
    ],
    "{code} is not allowed in a string (no control characters but tab, no line separators)": [
        'model "a\tb\x01"',
        'model "\x7f"',
        'model "a\u2028"',
        'model "a\ud800"',
    ],
    "unterminated string; a string ends with '\"' on the same line": [
        'model "a',
        'model "a\nmodel "b"',
        'model "a\\"',
    ],
}

_UNKNOWN_ESCAPE, _BAD_CHARACTER, _UNTERMINATED = MECHA_STRING_ERRORS
_STRING_START = '"'
_ESCAPES = '"\\'
_BAD_IN_STRING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")


def parse_with_grammar(text: str) -> Tree[Token]:
    """The grammar's parse of ``text``, read as if after a line break.

    A leading line break puts the first line in the same parser states as every other line,
    so each labelled example names its error wherever the line is. Positions in the tree and
    in errors are those of ``"\\n" + text``.
    """
    return lalr_parser("mecha").parse("\n" + text)


def grammar_lines(text: str, file: str) -> list[LineTokens]:
    """The tokens of ``text`` by line, read with the grammar; a syntax error raises MircError."""
    from lark import UnexpectedInput

    try:
        tree = parse_with_grammar(text)
    except UnexpectedInput as exc:
        raise MircError([syntax_error(exc, text, file)]) from None
    sources = text.split("\n")
    lines: list[LineTokens] = []
    for child in tree.children:
        tokens = _flatten(child)
        number = (tokens[0].line or 2) - 1
        source = sources[number - 1].removesuffix("\r")
        items = [(_kind(tok), str(tok), tok.column or 1) for tok in tokens]
        lines.append(LineTokens(number, source, items))
    return lines


_VALUE_KINDS = {'"': "STRING", "&": "REF", "n": "CONSTANT", "t": "CONSTANT", "f": "CONSTANT"}


def value_kind(value: str) -> str:
    """STRING, REF, CONSTANT or NUMBER: the grammar reads them all as VALUE, told apart by the
    first character."""
    return _VALUE_KINDS.get(value[0], "NUMBER")


def _kind(token: Token) -> str:
    return value_kind(str(token)) if token.type == "VALUE" else token.type


def _flatten(node: Tree[Token] | Token) -> list[Token]:
    from lark import Token

    if isinstance(node, Token):
        return [node]
    if node.data == "version":
        keyword = Token("COMMAND", "version", line=node.meta.line, column=node.meta.column)
        return [keyword, *_flatten(node.children[0])]
    tokens: list[Token] = []
    for child in node.children:
        tokens.extend(_flatten(child))
    return tokens


def syntax_error(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """The diagnostic for the grammar's first error in ``text`` (``exc`` from
    :func:`parse_with_grammar`)."""
    offset = _offset(exc, text)
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start : len(text) if line_end < 0 else line_end]
    col = offset - line_start
    found = _string_problem(line, col) or _char_problem(line, col) or _word_problem(line, col)
    if found is None:
        label = exc.match_examples(parse_with_grammar, MECHA_ERRORS, use_accepts=True)
        found = (label or _unexpected(exc), col, 1)
    message, at, width = found
    number = text.count("\n", 0, offset) + 1
    span = Span(file, number, at + 1, number, at + 1 + width, line.removesuffix("\r"))
    return Diagnostic.error(SYNTAX, message, span)


def _offset(exc: UnexpectedInput, text: str) -> int:
    """Where in ``text`` the error is (the grammar read a line break before it)."""
    from lark import UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedEOF):
        return len(text)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return len(text)
    pos = getattr(exc, "pos_in_stream", None)
    return len(text) if pos is None else max(0, int(pos) - 1)


def _unexpected(exc: UnexpectedInput) -> str:
    """Wording for an error no table knows (a test keeps this from being reached)."""
    from lark import UnexpectedToken

    if isinstance(exc, UnexpectedToken):
        return f"unexpected {str(exc.token)!r} in the recipe"
    return "unexpected text in the recipe"


def _string_problem(line: str, col: int) -> tuple[str, int, int] | None:
    """A malformed string starting at ``col``: its first bad character, or no closing quote."""
    if not line.startswith(_STRING_START, col):
        return None
    pos = col + 1
    while pos < len(line):
        char = line[pos]
        if char == '"':
            return None
        if char == "\\":
            follower = line[pos + 1 : pos + 2]
            if follower not in _ESCAPES or not follower:
                shown = "\\" + follower if follower.isprintable() else "\\"
                return _UNKNOWN_ESCAPE.format(escape=shown), pos, 2
            pos += 2
            continue
        if _BAD_IN_STRING.match(char):
            return _BAD_CHARACTER.format(code=_code(char)), pos, 1
        pos += 1
    return _UNTERMINATED, col, 1


def _char_problem(line: str, col: int) -> tuple[str, int, int] | None:
    """A character no token may hold, at ``col`` or after the spaces there."""
    while col < len(line) and line[col] in " \t":
        col += 1
    if col >= len(line):
        return None
    char = line[col]
    for pattern, message, _ in MECHA_CHAR_ERRORS:
        if re.fullmatch(pattern, char):
            return message.format(code=_code(char)), col, 1
    return None


def _word_problem(line: str, col: int) -> tuple[str, int, int] | None:
    """A malformed value, worded by the word (after any ``key=``) the error is in."""
    start = max(line.rfind(" ", 0, col), line.rfind("\t", 0, col)) + 1
    head = line[:start].strip()
    if not head or head == "version":
        return None
    key = re.match(r"[A-Za-z_][\w.\-]*=", line[start:])
    if key is not None and start + key.end() <= col:
        start += key.end()
    rest = line[start:]
    word = re.split(r"[ \t]", rest, maxsplit=1)[0]
    for pattern, message, _ in MECHA_WORD_ERRORS:
        if re.match(f"(?:{pattern})(?![^ \t])", rest):
            return message.format(word=word), start, max(1, len(word))
    return None


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"
