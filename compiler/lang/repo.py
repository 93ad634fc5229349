"""Hub repository ids: ``[ORG/]NAME`` (``black-forest-labs/FLUX.1-dev``).

The grammar (``compiler/grammars/repo.lark``) admits letters, digits, ``-``, ``_`` and ``.`` in
at most two parts. The hub's further rules are checked after parsing and reported at their own
column: a part is at most 96 characters, does not start or end with ``-`` or ``.``, and holds no
``--`` or ``..`` — so a repo id is always a name, never a path (``../x``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lark import Token, Tree

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.grammar import parse_or_raise

MAX_PART = 96
MAX_LENGTH = 2 * MAX_PART + 1

REPO_ERRORS: dict[str, list[str]] = {
    "a repo id is ORG/NAME; expected the name after '/'": ["org/", "a-b/"],
    "a repo id is ORG/NAME; expected the organisation before '/'": ["/name", "/"],
    "a repo id is ORG/NAME, with one '/'": ["org/name/x", "a/b/", "a//b"],
    "empty repo id": [""],
}

REPO_CHAR_ERRORS: list[tuple[str, str]] = [
    (r"\s", "whitespace is not allowed in a repo id"),
    (r"\\", "a repo id is ORG/NAME, not a path; '\\' is not allowed"),
    (r".", "a repo id holds letters, digits, '-', '_' and '.' (and one '/')"),
]

# The hub's rules for each part: (pattern found → message).
PART_RULES: list[tuple[str, str]] = [
    (r"\.\.", "'..' is not allowed in a repo id (it is a name, not a path)"),
    (r"--", "'--' is not allowed in a repo id"),
    (r"^[-.]", "a repo id part cannot start with '-' or '.'"),
    (r"[-.]$", "a repo id part cannot end with '-' or '.'"),
]


class RepoId(NamedTuple):
    """A hub repository id; ``str()`` gives it back as written."""

    name: str
    org: str | None = None

    def __str__(self) -> str:
        return self.name if self.org is None else f"{self.org}/{self.name}"


def parse_repo(text: str, file: str = "<arg>") -> RepoId:
    """Parse a hub repo id; a malformed one raises :class:`MircError` (positioned)."""
    if len(text) > MAX_LENGTH:
        span = Span.at_offset(file, text, MAX_LENGTH)
        message = f"repo id is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        raise MircError([Diagnostic.error("repo-too-long", message, span)])
    tree = parse_or_raise(
        "repo", text, file, REPO_ERRORS, "repo-syntax", "repo id", REPO_CHAR_ERRORS
    )
    parts: dict[str, Token] = {}
    for child in tree.children:
        if isinstance(child, Tree) and isinstance(child.children[0], Token):
            parts[str(child.data)] = child.children[0]
    problems = [d for token in parts.values() for d in _part_problems(token, text, file)]
    if problems:
        raise MircError(problems)
    org = parts.get("org")
    return RepoId(str(parts["name"]), None if org is None else str(org))


def _part_problems(token: Token, text: str, file: str) -> list[Diagnostic]:
    start = int(token.start_pos or 0)
    if len(token) > MAX_PART:
        span = Span.at_offset(file, text, start + MAX_PART, start + len(token))
        message = f"a repo id part is at most {MAX_PART} characters; this one has {len(token)}"
        return [Diagnostic.error("repo-too-long", message, span)]
    for pattern, message in PART_RULES:
        found = re.search(pattern, token)
        if found is not None:
            span = Span.at_offset(file, text, start + found.start(), start + found.end())
            return [Diagnostic.error("repo-name", message, span)]
    return []
