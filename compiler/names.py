"""One entry point for every kind of name ``mirc parse`` reads: MIR ids and other schemes.

Each kind maps to a function that parses one string into a :class:`Named`: a value with
``to_json()`` and ``describe()``, plus warnings about a string that parsed but is not fully
understood; a rejected string raises :class:`~compiler.diagnostics.MircError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.air import Air, air_to_mir, parse_air
from compiler.lang.checkpoint import parse_checkpoint
from compiler.lang.mir import MirId, parse_mir
from compiler.lang.mmpretrain import parse_model_name
from compiler.taxonomy import load_taxonomy

ARG_FILE = "<arg>"


class ParsedName(Protocol):
    def to_json(self) -> dict[str, object]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Named:
    """A parsed name and the warnings it raised (an AIR the crosswalk cannot map, say)."""

    value: ParsedName
    warnings: tuple[Diagnostic, ...] = ()


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


@dataclass(frozen=True)
class AirName:
    """An AIR and the MIR id the crosswalk gives it (None when it gives none)."""

    air: Air
    mir: MirId | None

    def to_json(self) -> dict[str, object]:
        return {**self.air.to_json(), "mir": None if self.mir is None else str(self.mir)}

    def describe(self) -> str:
        return f"{self.air}  ->  {self.mir if self.mir is not None else '(no MIR id)'}"


def parse_air_name(text: str, file: str = ARG_FILE) -> Named:
    """Parse an AIR and convert it to a MIR id; an unmapped one carries a warning instead."""
    air = parse_air(text, file)
    conversion = air_to_mir(air, text, file)
    return Named(AirName(air, conversion.mir), conversion.diagnostics)


KINDS: dict[str, Callable[[str, str], Named]] = {
    "mir": lambda text, file: Named(parse_mir_name(text, file)),
    "air": parse_air_name,
    "mmpretrain": lambda text, file: Named(parse_model_name(text, file)),
    "checkpoint": lambda text, file: Named(parse_checkpoint(text, file)),
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
            named = parse(text, file)
        except MircError as exc:
            result.diagnostics.extend(exc.diagnostics)
            continue
        result.parsed.append(named.value)
        result.diagnostics.extend(named.warnings)
    return result
