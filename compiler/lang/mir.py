"""MIR identifiers: ``mir:DOMAIN.ARCH.SERIES[:COMPAT][@MODIFIER]``.

The grammar (``compiler/grammars/mir.lark``) is the definition. Well-formed ids take a fast path
(one compiled regular expression that accepts exactly the grammar's language, a property test
keeps the two in step); anything the fast path refuses goes through the grammar, so errors always
come from it. Whether the architecture exists is a semantic question answered by the taxonomy.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.grammar import parse_or_raise

MAX_LENGTH = 256
PREFIX = "mir:"
DOMAINS = ("dev", "model", "ops", "info")
DOMAIN_ALIASES = {"operations": "ops"}

_NAME = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_FAST = re.compile(
    rf"(?:mir:)?(dev|model|ops|operations|info)\.({_NAME})\.({_NAME})(?::({_NAME}))?(?:@({_NAME}))?"
)

# Labelled bad examples: the parser state each one fails in names the message (lark's
# match_examples). tests/test_lang_errors.py walks this table.
MIR_ERRORS: dict[str, list[str]] = {
    "unknown domain; expected dev, model, ops or info": [
        "foo.dit.flux",
        "mir:foo.dit.flux",
        "mir:models.dit.flux",
    ],
    "expected '.' and an architecture after the domain": ["model", "mir:model", "model:dit"],
    "expected an architecture after the domain": ["model.", "model..flux"],
    "expected '.' and a series after the architecture": ["model.dit", "model.dit:flux"],
    "expected a series after the architecture": ["model.dit."],
    "expected a compatibility name after ':'": ["model.dit.flux:", "model.dit.flux:@x"],
    "expected a modifier after '@'": ["model.dit.flux@", "model.dit.flux:dev@"],
    "unexpected text after the identifier": [
        "model.dit.flux:dev:x",
        "model.dit.flux.x",
        "model.dit.flux@a@b",
        "model.dit.flux@a:b",
        "model.dit.flux.1",
    ],
    "empty MIR identifier": [""],
}


# A character no token can start with is worded by its class, whatever the parser state.
MIR_CHAR_ERRORS: list[tuple[str, str]] = [
    (r"[A-Z]", "MIR identifiers are lowercase"),
    (r"_", "'_' is not allowed in a MIR identifier; use '-'"),
    (r"-", "a hyphen must stand between letters or digits (no leading, trailing or double '-')"),
    (r"\s", "whitespace is not allowed in a MIR identifier"),
    (r".", "MIR names are lowercase letters, digits and single hyphens"),
]


class MirId(NamedTuple):
    """A parsed MIR identifier; ``str()`` is its canonical spelling, always ``mir:``-prefixed."""

    domain: str
    arch: str
    series: str
    compat: str | None = None
    modifier: str | None = None

    def __str__(self) -> str:
        text = f"{PREFIX}{self.domain}.{self.arch}.{self.series}"
        if self.compat is not None:
            text += f":{self.compat}"
        if self.modifier is not None:
            text += f"@{self.modifier}"
        return text

    @property
    def key(self) -> str:
        """The id without the ``mir:`` prefix (the key form the upstream database uses)."""
        return str(self)[len(PREFIX) :]

    @property
    def series_id(self) -> MirId:
        """The same id without compatibility and modifier: the series it belongs to."""
        return MirId(self.domain, self.arch, self.series)

    def with_compat(self, compat: str | None) -> MirId:
        return self._replace(compat=compat)

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": str(self),
            "domain": self.domain,
            "arch": self.arch,
            "series": self.series,
            "compat": self.compat,
            "modifier": self.modifier,
        }


def parse_mir(text: str, file: str = "<arg>") -> MirId:
    """Parse a MIR id; a malformed one raises :class:`MircError` with a positioned diagnostic."""
    match = _FAST.fullmatch(text) if len(text) <= MAX_LENGTH else None
    if match is not None:
        domain, arch, series, compat, modifier = match.groups()
        return MirId(DOMAIN_ALIASES.get(domain, domain), arch, series, compat, modifier)
    return _parse_slow(text, file)


def is_mir(text: str) -> bool:
    """Whether ``text`` is a well-formed MIR id (syntax only)."""
    return len(text) <= MAX_LENGTH and _FAST.fullmatch(text) is not None


def _parse_slow(text: str, file: str) -> MirId:
    if len(text) > MAX_LENGTH:
        span = Span.at_offset(file, text, MAX_LENGTH)
        message = f"MIR identifier is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        raise MircError([Diagnostic.error("mir-too-long", message, span)])
    tree = parse_or_raise(
        "mir", text, file, MIR_ERRORS, "mir-syntax", "MIR identifier", MIR_CHAR_ERRORS
    )
    parts: dict[str, str] = {}
    domain = ""
    for child in tree.children:
        if getattr(child, "type", None) == "DOMAIN":
            domain = str(child)
        elif hasattr(child, "data"):
            parts[str(child.data)] = str(child.children[0])
    return MirId(
        DOMAIN_ALIASES.get(domain, domain),
        parts["arch"],
        parts["series"],
        parts.get("compat"),
        parts.get("modifier"),
    )
