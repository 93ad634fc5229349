"""The matcher without its index: every candidate tried through every reading of a file.

This is how ``mirc identify`` scored files before its pool was compiled per view and indexed by
required keys. The tests hold the indexed matcher to it: the same scores, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from compiler.identify.match import (
    COUNT_WEIGHT,
    FORBIDDEN_PENALTY,
    Score,
    _count_agreement,
    _rank,
    fits,
)
from compiler.identify.pool import Candidate
from compiler.identify.prefixes import KeyIndex, views
from compiler.ir import Shape
from compiler.tensorfile import TensorTable

Reading = tuple[str, str]  # (the view put before each key, the prefix taken off it first)


def score_all(
    pool: Iterable[Candidate], tensors: TensorTable, index: KeyIndex, *, full: bool = False
) -> list[Score]:
    """Every candidate through every view and dropped prefix that the file could match (with
    ``full``: that shares any required key with the file), scored and ranked."""
    found = views(index)
    names = index.name_set
    readings: list[tuple[Candidate, Reading]] = []
    if full:
        for c in pool:
            options = [(view, "") for view in found.all]
            options += [(base, drop) for drop in c.drops for base in found.bases]
            readings += [(c, r) for r in options if _shares_a_key(c, r, names)]
    else:
        readings += [(c, (view, "")) for view in found.all for c in pool if view + c.first in names]
        readings += [
            (c, (base, drop))
            for c in pool
            for drop in c.drops
            if c.first.startswith(drop)
            for base in found.bases
            if base + c.first[len(drop) :] in names
        ]
        readings = [(c, r) for c, r in readings if _has_required(c, r, names)]
    return sorted((score(c, r, tensors, index) for c, r in readings), key=_rank)


def score(candidate: Candidate, reading: Reading, tensors: TensorTable, index: KeyIndex) -> Score:
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


def _file_key(key: str, reading: Reading) -> str | None:
    view, drop = reading
    return view + key[len(drop) :] if key.startswith(drop) else None


def _check(
    keys: Mapping[str, Shape], reading: Reading, tensors: TensorTable
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    found: list[str] = []
    lacking: list[str] = []
    for key, shape in keys.items():
        name = _file_key(key, reading)
        info = tensors.get(name) if name is not None else None
        (found if info is not None and fits(shape, info.shape) else lacking).append(key)
    return tuple(found), tuple(lacking)


def _has_required(candidate: Candidate, reading: Reading, names: frozenset[str]) -> bool:
    return all(_file_key(key, reading) in names for key in candidate.fingerprint.required)


def _shares_a_key(candidate: Candidate, reading: Reading, names: frozenset[str]) -> bool:
    return any(_file_key(key, reading) in names for key in candidate.fingerprint.required)
