"""The Lark grammars shipped in ``compiler/grammars/``, and their errors as diagnostics.

Parse-error wording comes from a table of labelled bad examples per grammar (Lark's
``match_examples``): the parser state an error stops in is compared with the states the labelled
examples stop in, and the matching label becomes the message.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from compiler.diagnostics import Diagnostic, MircError, Span

if TYPE_CHECKING:  # lark is imported when a grammar is first used: fast paths never need it
    from lark import Lark, UnexpectedInput


def grammar_text(name: str) -> str:
    """The text of ``compiler/grammars/<name>.lark`` (also shown on the website)."""
    return resources.files("compiler.grammars").joinpath(f"{name}.lark").read_text("utf-8")


@functools.cache
def lalr_parser(name: str, start: str = "start") -> Lark:
    """An LALR parser with a contextual lexer for grammar ``name``, built once per process.

    A grammar may ``%import`` rules from another one in ``compiler/grammars/`` by its name.
    """
    from lark import Lark
    from lark.load_grammar import FromPackageLoader

    return Lark(
        grammar_text(name),
        parser="lalr",
        lexer="contextual",
        start=start,
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
        import_paths=[FromPackageLoader("compiler", ("grammars",))],
    )


def describe_expected(names: Sequence[str] | set[str] | frozenset[str]) -> str:
    """Terminal names as a short human list: ``'.' or NAME``."""
    shown = sorted(_TERMINAL_WORDS.get(n, n) for n in names if not n.startswith("__"))
    if not shown:
        return "end of input"
    if len(shown) > 6:
        shown = [*shown[:6], "…"]
    return " or ".join(shown)


_TERMINAL_WORDS = {
    "DOT": "'.'",
    "COLON": "':'",
    "AT": "'@'",
    "EQUAL": "'='",
    "AMPERSAND": "'&'",
    "MINUS": "'-'",
    "UNDERSCORE": "'_'",
    "PLUS": "'+'",
    "LSQB": "'['",
    "RSQB": "']'",
    "_NL": "end of line",
    "$END": "end of input",
}


def syntax_diagnostic(
    exc: UnexpectedInput,
    text: str,
    file: str,
    parse: Callable[[str], Any],
    examples: Mapping[str, Sequence[str]],
    code: str,
    what: str,
    char_errors: Sequence[tuple[str, str]] = (),
) -> Diagnostic:
    """A diagnostic for a Lark error.

    A character no token can start with is worded by the first ``char_errors`` pattern it
    matches; otherwise the labelled ``examples`` whose parser state matches give the wording.
    """
    from lark import UnexpectedCharacters

    position = _position(exc, text)
    span = Span.at_offset(file, text, position)
    label = None
    if isinstance(exc, UnexpectedCharacters) and position < len(text):
        label = next((m for p, m in char_errors if re.fullmatch(p, text[position])), None)
    if label is None:
        label = exc.match_examples(parse, examples, use_accepts=True)
    if label is None:
        label = _generic_message(exc, text, position, what)
    return Diagnostic.error(code, label, span)


def _position(exc: UnexpectedInput, text: str) -> int:
    from lark import UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedEOF):
        return len(text)
    pos = getattr(exc, "pos_in_stream", None)
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return len(text)
    return int(pos) if pos is not None else len(text)


def _generic_message(exc: UnexpectedInput, text: str, position: int, what: str) -> str:
    from lark import UnexpectedCharacters, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        char = text[position] if position < len(text) else ""
        return f"unexpected character {char!r} in {what}"
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return f"{what} ends too early; expected {describe_expected(exc.expected)}"
        return (
            f"unexpected {exc.token.value!r} in {what}; expected {describe_expected(exc.expected)}"
        )
    return f"{what} ends too early"


def parse_or_raise(
    name: str,
    text: str,
    file: str,
    examples: Mapping[str, Sequence[str]],
    code: str,
    what: str,
    char_errors: Sequence[tuple[str, str]] = (),
    start: str = "start",
) -> Any:
    """Parse ``text`` with grammar ``name`` from rule ``start``; errors raise :class:`MircError`."""
    from lark import UnexpectedInput

    parser = lalr_parser(name, start)
    try:
        return parser.parse(text)
    except UnexpectedInput as exc:
        diagnostic = syntax_diagnostic(
            exc, text, file, parser.parse, examples, code, what, char_errors
        )
        raise MircError([diagnostic]) from None
