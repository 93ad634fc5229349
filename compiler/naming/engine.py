"""The series-rule engine: a hub repo id → a MIR series and compatibility, by a table of rules.

The rules are data (``rules.yaml`` beside this module): ordered, named regular expressions, each
with what it does. The engine applies them in order, pass after pass, until a whole pass changes
nothing, and records every rule that fired with the text before and after it. Because the result
is a fixed point of every rule, deriving a series from a derived series changes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import yaml

ACTIONS = ("lowercase", "drop", "replace", "compat")
# Every rule shortens the text or lowercases it or swaps a separator run for one hyphen, so a
# fixed point comes within a few passes; the cap only guards against a broken rule table.
MAX_PASSES = 32


@dataclass(frozen=True, slots=True)
class NamingRule:
    """One row of the rule table."""

    name: str
    does: str
    pattern: re.Pattern[str]
    why: str
    replacement: str = ""

    def apply(self, text: str) -> tuple[str, str | None]:
        """``text`` after this rule, and the compatibility part it split off (if any)."""
        if self.does == "lowercase":
            return self.pattern.sub(lambda found: found.group().lower(), text), None
        if self.does != "compat":
            return self.pattern.sub(self.replacement, text), None
        found = self.pattern.search(text)
        if found is None:
            return text, None
        return text[: found.start()] + text[found.end() :], found.group(1)


@dataclass(frozen=True, slots=True)
class RuleFiring:
    """A rule that changed the text: what it was, what it became, what became compatibility."""

    rule: str
    before: str
    after: str
    compat: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "rule": self.rule,
            "before": self.before,
            "after": self.after,
            "compat": self.compat,
        }


@dataclass(frozen=True, slots=True)
class SeriesDerivation:
    """A derived series, its compatibility parts (written order) and the rules that fired."""

    series: str
    compat: tuple[str, ...]
    fired: tuple[RuleFiring, ...]

    @property
    def compat_name(self) -> str | None:
        """The compatibility field: its parts joined by hyphens, or None."""
        return "-".join(self.compat) if self.compat else None


@functools.cache
def load_rules() -> tuple[NamingRule, ...]:
    """The rule table shipped beside this module (trusted package data, so ``safe_load``)."""
    text = resources.files("compiler.naming").joinpath("rules.yaml").read_text("utf-8")
    return tuple(_rule(row) for row in yaml.safe_load(text)["rules"])


def _rule(row: dict[str, str]) -> NamingRule:
    if row["does"] not in ACTIONS:
        raise ValueError(f"naming rule {row['name']!r}: unknown action {row['does']!r}")
    return NamingRule(
        row["name"], row["does"], re.compile(row["pattern"]), row["why"], row.get("with", "")
    )


def derive_series(text: str, rules: Sequence[NamingRule] | None = None) -> SeriesDerivation:
    """Apply the rules to ``text`` (a repo id) until none changes it."""
    table = load_rules() if rules is None else rules
    fired: list[RuleFiring] = []
    compat: list[str] = []
    for _ in range(MAX_PASSES):
        before_pass = text
        for rule in table:
            after, part = rule.apply(text)
            if after != text:
                fired.append(RuleFiring(rule.name, text, after, part))
                text = after
            if part is not None:
                compat.insert(0, part)  # peeled from the end: each part precedes earlier ones
        if text == before_pass:
            return SeriesDerivation(text, tuple(compat), tuple(fired))
    raise RuntimeError(f"the naming rules do not settle on {text!r}")
