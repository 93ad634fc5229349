"""Comparing two upstream databases, and explaining each difference by the normalisation table.

``export(import(upstream))`` differs from ``upstream`` only where a rule that export does not
restore (``export: normalise``) applied: :func:`explain` pairs each difference with the changes
import recorded at or around that place, so a test can require every difference to be explained.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.interop.table import Change, UpstreamPath, rules


@dataclass(frozen=True, slots=True)
class Difference:
    """One place where two databases differ: a key only one side has, or a different value."""

    path: UpstreamPath
    kind: str  # "removed" (only in the first), "added" (only in the second) or "changed"
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        where = " / ".join(self.path)
        if self.kind == "changed":
            return f"{where}: {_short(self.before)} -> {_short(self.after)}"
        side = self.before if self.kind == "removed" else self.after
        return f"{where}: {self.kind} {_short(side)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(before: Any, after: Any, path: UpstreamPath = ()) -> Iterator[Difference]:
    """Every difference between ``before`` and ``after``, depth first, in ``before``'s order.

    Values of different types differ (``1``, ``1.0`` and ``True`` are three values).
    """
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            if key not in after:
                yield Difference((*path, key), "removed", before=value)
            else:
                yield from differences(value, after[key], (*path, key))
        for key, value in after.items():
            if key not in before:
                yield Difference((*path, key), "added", after=value)
    elif type(before) is not type(after) or before != after:
        yield Difference(path, "changed", before, after)


def explain(
    found: Iterable[Difference], changes: Iterable[Change]
) -> list[tuple[Difference, tuple[str, ...]]]:
    """Each difference with the names of the non-restoring rules that applied at or around its
    place (the change's path and the difference's path, one a prefix of the other)."""
    table = rules()
    normalising = [c for c in changes if table[c.rule].export == "normalise"]
    explained = []
    for difference in found:
        names = {c.rule for c in normalising if _overlap(c.path, difference.path)}
        explained.append((difference, tuple(sorted(names))))
    return explained


def _overlap(first: UpstreamPath, second: UpstreamPath) -> bool:
    length = min(len(first), len(second))
    return first[:length] == second[:length]


def report(explained: Iterable[tuple[Difference, tuple[str, ...]]]) -> str:
    """One line per difference: where, what, and the rules that explain it."""
    lines = []
    for difference, names in explained:
        because = ", ".join(names) if names else "UNEXPLAINED"
        lines.append(f"{difference.describe()}  [{because}]")
    return "\n".join(lines) + "\n"


def counts_by_rule(explained: Iterable[tuple[Difference, tuple[str, ...]]]) -> Mapping[str, int]:
    """How many differences each rule explains (a difference may count for several rules)."""
    result: dict[str, int] = {}
    for _, names in explained:
        for name in names:
            result[name] = result.get(name, 0) + 1
    return dict(sorted(result.items()))
