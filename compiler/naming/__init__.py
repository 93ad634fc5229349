"""``mirc name``: a MIR id from a hub repo id, by the seed's naming rules.

The series and compatibility come from the repo id through the rule table (``engine.py``,
``rules.yaml``); the architecture from ``--class`` through the MIR template (``classify.py``),
and is ``unclassified`` when no class is given; the domain is ``info``, as in the upstream
database, unless another is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from compiler.diagnostics import Diagnostic, MircError, Span, did_you_mean
from compiler.lang.mir import DOMAIN_ALIASES, DOMAINS, MirId, parse_mir
from compiler.lang.repo import parse_repo
from compiler.naming.classify import DEFAULT, Classification, classify_class
from compiler.naming.engine import RuleFiring, SeriesDerivation, derive_series

DEFAULT_DOMAIN = "info"
ARG_FILE = "<arg>"

__all__ = [
    "DEFAULT_DOMAIN",
    "NamedRepo",
    "NamingResult",
    "RuleFiring",
    "SeriesDerivation",
    "derive_series",
    "name_repo",
    "name_repos",
]


@dataclass(frozen=True, slots=True)
class NamedRepo:
    """A repo id, the MIR id derived from it, and why: the rules that fired, the class's verdict."""

    repo: str
    mir: MirId
    derivation: SeriesDerivation
    classification: Classification

    def to_json(self) -> dict[str, object]:
        return {
            "repo": self.repo,
            **self.mir.to_json(),
            "arch_from": self.classification.to_json(),
            "rules": [firing.to_json() for firing in self.derivation.fired],
        }

    def describe(self) -> str:
        return f"{self.mir}  <- {self.repo}"


@dataclass
class NamingResult:
    named: list[NamedRepo] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def name_repos(
    repos: Iterable[str], class_name: str | None = None, domain: str = DEFAULT_DOMAIN
) -> NamingResult:
    """Name every repo; keep going past rejected ones and collect their diagnostics."""
    result = NamingResult()
    try:
        canonical_domain = _check_domain(domain)
        classification = DEFAULT if class_name is None else classify_class(class_name)
    except MircError as exc:
        result.diagnostics.extend(exc.diagnostics)
        return result
    for repo in repos:
        try:
            result.named.append(name_repo(repo, classification, canonical_domain))
        except MircError as exc:
            result.diagnostics.extend(exc.diagnostics)
    return result


def name_repo(
    repo: str, classification: Classification = DEFAULT, domain: str = DEFAULT_DOMAIN
) -> NamedRepo:
    """The MIR id of one repo id; a bad repo id, or one the rules empty, raises MircError."""
    parse_repo(repo, ARG_FILE)
    derivation = derive_series(repo)
    if not derivation.series:
        rules = ", ".join(firing.rule for firing in derivation.fired)
        span = Span.at_offset(ARG_FILE, repo, 0, len(repo))
        message = f"nothing is left of {repo!r} as a series after the naming rules ({rules})"
        raise MircError([Diagnostic.error("name-empty", message, span)])
    text = f"{domain}.{classification.arch}.{derivation.series}"
    if derivation.compat_name is not None:
        text += f":{derivation.compat_name}"
    return NamedRepo(repo, parse_mir(text, ARG_FILE), derivation, classification)


def _check_domain(domain: str) -> str:
    canonical = DOMAIN_ALIASES.get(domain, domain)
    if canonical in DOMAINS:
        return canonical
    span = Span.at_offset("<--domain>", domain, 0, len(domain))
    notes = did_you_mean(domain, [*DOMAINS, *DOMAIN_ALIASES])
    message = f"unknown domain {domain!r}; expected dev, model, ops or info"
    raise MircError([Diagnostic.error("name-domain", message, span, notes)])
