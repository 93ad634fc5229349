"""Scoring every registry fingerprint against a file's tensors, and keeping what they prove.

Each candidate is one fingerprint of one variant. Through each view (``prefixes.views``) a
candidate scores the share of its required keys that the file has with a fitting shape (a
``null`` size fits any), less a penalty for each forbidden key the file has; a candidate
*matches* when it has every required key and no forbidden one. Matches that read the same part
of the file (the same *region*) compete: the best confidence wins, and candidates as good as it
from other variants are reported as a tie, never picked from arbitrarily.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from compiler.identify.prefixes import KeyIndex, common_region, component_prefixes, views
from compiler.ir import BASE, Fingerprint, Shape
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry
from compiler.tensorfile import TensorTable

# How much the file's tensor count agreeing with the fingerprint's adds to a full match.
COUNT_WEIGHT = 0.1
FORBIDDEN_PENALTY = 0.5
NEAREST = 3


@dataclass(frozen=True)
class Candidate:
    """A registry fingerprint, as matching needs it."""

    mir: str
    fingerprint: Fingerprint
    region: str  # the longest dotted prefix all its required keys share
    drops: tuple[str, ...]  # component prefixes to drop to read the component saved alone
    first: str  # its first required key: no reading can match a file without it
    keys: Mapping[str, frozenset[str]]  # its required keys with each prefix of ``drops`` (and "")
    # taken off, to tell at set speed whether a file shares any
    distinct: frozenset[str]  # its keys that no fingerprint of another format mentions

    @property
    def label(self) -> str:
        """The component it fingerprints (``lora`` for adapters), for reports."""
        return self.fingerprint.component or (
            "lora" if self.fingerprint.format.endswith("lora") else "model"
        )


@dataclass(frozen=True)
class Score:
    """A candidate read through one view: how well it fits, and the keys that decided it."""

    candidate: Candidate
    view: str  # put before each fingerprint key ...
    drop: str  # ... after this prefix is taken off it
    confidence: float
    matched: tuple[str, ...]  # required and optional keys found with fitting shapes
    missing: tuple[str, ...]  # required keys absent, or present with another shape
    reshaped: tuple[str, ...]  # those of ``missing`` present with another shape
    forbidden: tuple[str, ...]  # forbidden keys present

    @property
    def is_match(self) -> bool:
        return not self.missing and not self.forbidden

    @property
    def region(self) -> str:
        return self.view + self.candidate.region.removeprefix(self.drop)

    @property
    def specificity(self) -> int:
        """How many matched keys only fingerprints of its own format name."""
        return len(self.candidate.distinct.intersection(self.matched))


@dataclass(frozen=True)
class Finding:
    """One component of a file: the winning score, and any score tied with it."""

    best: Score
    ties: tuple[Score, ...]


def candidates(linked: LinkedRegistry) -> tuple[Candidate, ...]:
    """Every fingerprint of every variant in the registry, in a stable order."""
    printed = [
        (_display(mir), fingerprint)
        for mir, variant in sorted(linked.variants.items(), key=lambda item: str(item[0]))
        for fingerprint in variant.fingerprints
    ]
    formats: dict[str, set[str]] = {}
    for _, fingerprint in printed:
        for key in _mentioned(fingerprint):
            formats.setdefault(key, set()).add(fingerprint.format)
    return tuple(
        Candidate(
            mir,
            fingerprint,
            region := _region(fingerprint),
            component_prefixes(region),
            next(iter(fingerprint.required), ""),
            _stripped_keys(fingerprint, component_prefixes(region)),
            frozenset(k for k in _mentioned(fingerprint) if formats[k] == {fingerprint.format}),
        )
        for mir, fingerprint in printed
    )


def _stripped_keys(fingerprint: Fingerprint, drops: tuple[str, ...]) -> dict[str, frozenset[str]]:
    return {
        drop: frozenset(k[len(drop) :] for k in fingerprint.required if k.startswith(drop))
        for drop in ("", *drops)
    }


def _mentioned(fingerprint: Fingerprint) -> list[str]:
    return [*fingerprint.required, *fingerprint.optional, *fingerprint.forbidden]


def _display(mir: MirId) -> str:
    """The id as people write it: the base variant without its ``:base``."""
    return str(mir._replace(compat=None) if mir.compat == BASE else mir)


def _region(fingerprint: Fingerprint) -> str:
    return common_region(fingerprint.required)


def fits(expected: Shape, actual: Sequence[int]) -> bool:
    """Whether a file's shape is the fingerprint's; ``None`` fits any size."""
    return len(expected) == len(actual) and all(
        e is None or e == a for e, a in zip(expected, actual, strict=True)
    )


def score(
    candidate: Candidate, reading: tuple[str, str], tensors: TensorTable, index: KeyIndex
) -> Score:
    """``candidate`` read through ``reading``: (the view put before each key, the prefix taken
    off each key first)."""
    view, drop = reading
    fingerprint = candidate.fingerprint
    matched, missing = _check(fingerprint.required, reading, tensors)
    optional, _ = _check(fingerprint.optional, reading, tensors)
    forbidden = tuple(key for key in fingerprint.forbidden if _file_key(key, reading) in tensors)
    share = len(matched) / max(len(fingerprint.required), 1)
    if not missing:
        region = view + candidate.region.removeprefix(drop)
        share *= 1 - COUNT_WEIGHT + COUNT_WEIGHT * _count_agreement(candidate, region, index)
    confidence = round(share * (FORBIDDEN_PENALTY ** len(forbidden)), 4)
    reshaped = tuple(k for k in missing if _file_key(k, reading) in tensors)
    return Score(
        candidate, view, drop, confidence, matched + optional, missing, reshaped, forbidden
    )


def _file_key(key: str, reading: tuple[str, str]) -> str | None:
    view, drop = reading
    return view + key[len(drop) :] if key.startswith(drop) else None


def _check(
    keys: Mapping[str, Shape], reading: tuple[str, str], tensors: TensorTable
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    found: list[str] = []
    lacking: list[str] = []
    for key, shape in keys.items():
        name = _file_key(key, reading)
        info = tensors.get(name) if name is not None else None
        (found if info is not None and fits(shape, info.shape) else lacking).append(key)
    return tuple(found), tuple(lacking)


def _count_agreement(candidate: Candidate, region: str, index: KeyIndex) -> float:
    """How close the file's tensor count in the candidate's region is to the fingerprint's.

    LoRAs train whichever modules their author chose, so their counts say nothing."""
    expected = candidate.fingerprint.tensors
    if not expected or candidate.label == "lora":
        return 1.0
    present = index.under(region)
    return min(present, expected) / max(present, expected)


def score_all(
    pool: Iterable[Candidate], tensors: TensorTable, index: KeyIndex, *, full: bool = False
) -> list[Score]:
    """The candidates through every reading of the file, best first: by confidence, then the
    file read as it is before a component of it, then by the keys only its format names (a
    diffusers VAE matches the ldm VAE print too), then by how much it matched.

    A reading is scored only when the file has all the candidate's required keys there (looked
    for only where it has the first), so a file costs about one lookup per reading; with
    ``full`` (for the nearest candidates of an unknown file), when it has any required key.
    """
    found = views(index)
    names = index.name_set
    readings = [(c, (view, "")) for view in found.all for c in pool if view + c.first in names]
    readings += [
        (c, (base, drop))
        for c in pool
        for drop in c.drops
        if c.first.startswith(drop)
        for base in found.bases
        if base + c.first[len(drop) :] in names
    ]
    if full:
        under = {view: index.stripped(view) for view in found.all}
        readings = [
            (c, (view, drop))
            for c in pool
            for view, drop in [(view, "") for view in found.all]
            + [(base, drop) for drop in c.drops for base in found.bases]
            if not c.keys[drop].isdisjoint(under[view])
        ]
    else:
        readings = [(c, r) for c, r in readings if _has_required(c, r, names)]
    scores = [score(c, reading, tensors, index) for c, reading in readings]
    return sorted(scores, key=_rank)


def _has_required(candidate: Candidate, reading: tuple[str, str], names: frozenset[str]) -> bool:
    return all(_file_key(key, reading) in names for key in candidate.fingerprint.required)


def _rank(s: Score) -> tuple[float, int, int, int, str]:
    return (-s.confidence, len(s.view), -s.specificity, -len(s.matched), s.candidate.mir)


def findings(scores: Sequence[Score]) -> list[Finding]:
    """The components the matches prove, one per part of the file, with their ties.

    A match that drops a component prefix is a fallback: it stands only for a part of the file
    that no plain reading matched, since dropping the context drops what its forbidden keys
    meant (the ldm CLIP-L print does not forbid a projection its ldm file never holds)."""
    kept: list[list[Score]] = []
    matches = [s for s in scores if s.is_match]
    plain_groups = 0
    for match in [s for s in matches if not s.drop] + [s for s in matches if s.drop]:
        group = next((g for g in kept if _same_part(g[0], match)), None)
        if group is None:
            kept.append([match])
        elif (kept.index(group) >= plain_groups or not match.drop) and _ties(group, match):
            group.append(match)
        if not match.drop:
            plain_groups = len(kept)
    return [Finding(group[0], tuple(group[1:])) for group in kept]


def _ties(group: list[Score], match: Score) -> bool:
    best = group[0]
    return match.confidence >= best.confidence and all(
        s.candidate.mir != match.candidate.mir for s in group
    )


def _same_part(a: Score, b: Score) -> bool:
    """Whether two matches read the same part of the file: one component, and the same variant
    or one region holding the other."""
    if a.candidate.mir == b.candidate.mir:
        return True
    if a.candidate.label != b.candidate.label:
        return False
    return a.region.startswith(b.region) or b.region.startswith(a.region)


def nearest(scores: Sequence[Score], count: int = NEAREST) -> list[Score]:
    """The best-scoring candidates that did not match, one per variant, for unknown files."""
    seen: set[str] = set()
    near = []
    for s in scores:
        if s.confidence <= 0 or s.candidate.mir in seen:
            continue
        seen.add(s.candidate.mir)
        near.append(s)
        if len(near) == count:
            break
    return near
