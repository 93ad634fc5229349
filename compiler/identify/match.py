"""Scoring the registry's fingerprints against a file's tensors, and keeping what they prove.

Each candidate is one fingerprint of one variant (``pool``). Through each view
(``prefixes.views``) a candidate scores the share of its required keys that the file has with a
fitting shape (a ``null`` size fits any), less a penalty for each forbidden key the file has; a
candidate *matches* when it has every required key and no forbidden one. Only readings that can
match are scored (those with every required key in the file; for an unknown file's nearest
candidates, those with any). Matches that read the same part of the file (the same *region*)
compete: the best confidence wins, and candidates as good as it from other variants are
reported as a tie, never picked from arbitrarily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.identify.pool import Candidate, Key, Pool, Reading
from compiler.identify.prefixes import KeyIndex, Views, views
from compiler.ir import Shape
from compiler.tensorfile import TensorTable

# How much the file's tensor count agreeing with the fingerprint's adds to a full match.
COUNT_WEIGHT = 0.1
FORBIDDEN_PENALTY = 0.5
NEAREST = 3


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


def fits(expected: Shape, actual: Sequence[int]) -> bool:
    """Whether a file's shape is the fingerprint's; ``None`` fits any size."""
    if len(expected) != len(actual):
        return False
    for wanted, size in zip(expected, actual, strict=True):  # a loop: no generator per call
        if wanted is not None and wanted != size:
            return False
    return True


def score(reading: Reading, tensors: TensorTable, index: KeyIndex) -> Score:
    """A candidate read through one compiled reading of ``tensors``."""
    candidate = reading.candidate
    matched, missing, reshaped = _check(reading.required, tensors)
    optional = _check(reading.optional, tensors)[0]
    forbidden = tuple(key for key, name in reading.forbidden if name in tensors)
    share = len(matched) / max(len(reading.required), 1)
    if not missing:
        region = reading.view + candidate.region.removeprefix(reading.drop)
        share *= 1 - COUNT_WEIGHT + COUNT_WEIGHT * _count_agreement(candidate, region, index)
    confidence = round(share * (FORBIDDEN_PENALTY ** len(forbidden)), 4)
    return Score(
        candidate, reading.view, reading.drop, confidence, matched + optional, missing, reshaped,
        forbidden,
    )  # fmt: skip


def _check(
    keys: tuple[Key, ...], tensors: TensorTable
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The keys found with a fitting shape, those not, and those of them found reshaped."""
    found: list[str] = []
    lacking: list[str] = []
    reshaped: list[str] = []
    for key, name, shape, exact in keys:
        actual = None if name is None else tensors.shape_of(name)
        if actual is not None and (actual == shape if exact else fits(shape, actual)):
            found.append(key)
            continue
        lacking.append(key)
        if actual is not None:
            reshaped.append(key)
    return tuple(found), tuple(lacking), tuple(reshaped)


def _count_agreement(candidate: Candidate, region: str, index: KeyIndex) -> float:
    """How close the file's tensor count in the candidate's region is to the fingerprint's.

    LoRAs train whichever modules their author chose, so their counts say nothing."""
    expected = candidate.fingerprint.tensors
    if not expected or candidate.label == "lora":
        return 1.0
    present = index.under(region)
    return min(present, expected) / max(present, expected)


def score_all(
    pool: Pool,
    tensors: TensorTable,
    index: KeyIndex,
    *,
    full: bool = False,
    found: Views | None = None,
) -> list[Score]:
    """The candidates through every reading of the file, best first: by confidence, then the
    file read as it is before a component of it, then by the keys only its format names (a
    diffusers VAE matches the ldm VAE print too), then by how much it matched.

    A reading is scored only when the file has all the candidate's required keys there; with
    ``full`` (for the nearest candidates of an unknown file), when it has any required key.
    ``found``: the file's views, if at hand.
    """
    found = views(index) if found is None else found
    names = index.name_set
    readings = _sharing(pool, found, names) if full else _complete(pool, found, names)
    return sorted((score(reading, tensors, index) for reading in readings), key=_rank)


def _complete(pool: Pool, found: Views, names: frozenset[str]) -> list[Reading]:
    """The readings with every required key in the file: each view's in pool order, then
    those that drop a component prefix, by candidate, prefix and base."""
    readings: list[Reading] = []
    for view in found.all:
        table = pool.plain(view)
        hits = [r for first in table.firsts & names for r in table.by_first[first]]
        readings += sorted(hits, key=_pool_order)
    dropped: list[tuple[int, int, int, Reading]] = []
    for place, base in enumerate(found.bases):
        table = pool.dropped(base)
        for first in table.firsts & names:
            dropped += ((r.rank, r.place, place, r) for r in table.by_first[first])
    readings += (entry[3] for entry in sorted(dropped, key=lambda entry: entry[:3]))
    return [r for r in readings if r.whole and r.required_keys <= names]


def _sharing(pool: Pool, found: Views, names: frozenset[str]) -> list[Reading]:
    """The readings with any required key in the file, by candidate, then view as listed,
    then dropped prefix and base."""
    chosen: dict[tuple[int, int], Reading] = {}
    for place, view in enumerate(found.all):
        table = pool.plain(view)
        for key in table.keys & names:
            chosen.update(((r.rank, place), r) for r in table.by_key[key])
    bases = len(found.bases)
    for place, base in enumerate(found.bases):
        table = pool.dropped(base)
        for key in table.keys & names:
            chosen.update(
                ((r.rank, len(found.all) + r.place * bases + place), r) for r in table.by_key[key]
            )
    return [chosen[order] for order in sorted(chosen)]


def _pool_order(reading: Reading) -> int:
    return reading.rank


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
