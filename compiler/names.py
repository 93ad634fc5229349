"""One entry point for every kind of name ``mirc parse`` reads: MIR ids and other schemes.

Each kind maps to a function that parses one string into a value with ``to_json()`` and
``describe()``, raising :class:`~compiler.diagnostics.MircError` when the string is rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mir import parse_mir
from compiler.taxonomy import load_taxonomy

ARG_FILE = "<arg>"


class ParsedName(Protocol):
    def to_json(self) -> dict[str, object]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class MirName:
    """A MIR id checked against the taxonomy, with its architecture alias (if one was used)."""

    text: str
    mir_json: dict[str, str | None]
    alias: str | None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"input": self.text, **self.mir_json}
        if self.alias is not None:
            out["arch_alias"] = self.alias
        return out

    def describe(self) -> str:
        parts = " ".join(
            f"{k}={v}" for k, v in self.mir_json.items() if k != "id" and v is not None
        )
        return f"{self.mir_json['id']}  {parts}"


def parse_mir_name(text: str, file: str = ARG_FILE) -> MirName:
    """Parse a MIR id and check its architecture; aliases normalise to the canonical name."""
    mir = parse_mir(text, file)
    taxonomy = load_taxonomy()
    arch_offset = text.index(".") + 1
    span = Span.at_offset(file, text, arch_offset, arch_offset + len(mir.arch))
    problems = taxonomy.check(mir, span)
    if problems:
        raise MircError(problems)
    canonical = taxonomy.normalise(mir)
    alias = mir.arch if canonical.arch != mir.arch else None
    return MirName(text, canonical.to_json(), alias)


KINDS: dict[str, Callable[[str, str], ParsedName]] = {
    "mir": parse_mir_name,
}


@dataclass
class NamesResult:
    parsed: list[ParsedName] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def parse_names(kind: str, texts: Iterable[str], file: str = ARG_FILE) -> NamesResult:
    """Parse every text as ``kind``; keep going past rejected ones and collect their diagnostics."""
    parse = KINDS[kind]
    result = NamesResult()
    for text in texts:
        try:
            result.parsed.append(parse(text, file))
        except MircError as exc:
            result.diagnostics.extend(exc.diagnostics)
    return result
