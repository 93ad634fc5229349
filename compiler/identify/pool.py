"""The registry's fingerprints as matching needs them, compiled once per process.

A *reading* is one candidate read through one view: each fingerprint key turned into the file
key it would have there (``view`` put before it, after ``drop`` is taken off it). Matching asks,
for each view a file has, which readings have their first required key in the file, or any
required key (for the nearest candidates of an unknown file). The pool answers with one set
intersection per view: the readings of a view are compiled the first time a file shows it, and
indexed by those keys. The answers are exactly what trying every candidate would give; a test
holds the two in step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from compiler.identify.prefixes import common_region, component_prefixes
from compiler.ir import BASE, Fingerprint, Shape
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry


@dataclass(frozen=True)
class Candidate:
    """A registry fingerprint, as matching needs it."""

    mir: str
    fingerprint: Fingerprint
    region: str  # the longest dotted prefix all its required keys share
    drops: tuple[str, ...]  # component prefixes to drop to read the component saved alone
    first: str  # its first required key: no reading can match a file without it
    distinct: frozenset[str]  # its keys that no fingerprint of another format mentions

    @property
    def label(self) -> str:
        """The component it fingerprints (``lora`` for adapters), for reports."""
        return self.fingerprint.component or (
            "lora" if self.fingerprint.format.endswith("lora") else "model"
        )


class Key(NamedTuple):
    """A fingerprint key, the file key it has in a reading (None: it cannot be in the file
    there), and its shape; ``exact`` when the shape has no free size."""

    key: str
    file_key: str | None
    shape: Shape
    exact: bool


class Reading(NamedTuple):
    """A candidate compiled for one (view, drop); ``rank`` is its place in the pool."""

    candidate: Candidate
    view: str
    drop: str
    rank: int
    place: int  # the place of ``drop`` among the candidate's drops (-1: none dropped)
    first: str  # the file key of the first required key
    required_keys: frozenset[str]  # the file keys of its required keys
    whole: bool  # whether every required key has a file key in this reading
    required: tuple[Key, ...]
    optional: tuple[Key, ...]
    forbidden: tuple[tuple[str, str | None], ...]


class ViewIndex(NamedTuple):
    """The readings of one view, by the file key of their first required key and by each of
    their required keys."""

    by_first: dict[str, list[Reading]]
    by_key: dict[str, list[Reading]]
    firsts: frozenset[str]
    keys: frozenset[str]


class Pool:
    """Every candidate of the registry, in a stable order, with their readings compiled per view
    (a view is compiled when a file first shows it; the views are few)."""

    def __init__(self, members: tuple[Candidate, ...]) -> None:
        self.members = members
        self._plain: dict[str, ViewIndex] = {}
        self._dropped: dict[str, ViewIndex] = {}

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def plain(self, view: str) -> ViewIndex:
        """The readings of every candidate with ``view`` put before its keys."""
        found = self._plain.get(view)
        if found is None:
            readings = [_compile(c, view, "", rank) for rank, c in enumerate(self.members)]
            found = self._plain[view] = _index(readings)
        return found

    def dropped(self, base: str) -> ViewIndex:
        """The readings of candidates with one of their component prefixes dropped and
        ``base`` put before their keys (a component saved alone, maybe wrapped)."""
        found = self._dropped.get(base)
        if found is None:
            readings = [
                _compile(c, base, drop, rank)
                for rank, c in enumerate(self.members)
                for drop in c.drops
            ]
            found = self._dropped[base] = _index(readings)
        return found


def _compile(candidate: Candidate, view: str, drop: str, rank: int) -> Reading:
    fingerprint = candidate.fingerprint
    required = _keys(fingerprint.required, view, drop)
    forbidden = tuple((key, _file_key(key, view, drop)) for key in fingerprint.forbidden)
    return Reading(
        candidate,
        view,
        drop,
        rank,
        candidate.drops.index(drop) if drop else -1,
        view + candidate.first[len(drop) :],
        frozenset(k.file_key for k in required if k.file_key is not None),
        all(k.file_key is not None for k in required),
        required,
        _keys(fingerprint.optional, view, drop),
        forbidden,
    )


def _keys(keys: Mapping[str, Shape], view: str, drop: str) -> tuple[Key, ...]:
    return tuple(
        Key(key, _file_key(key, view, drop), tuple(shape), None not in shape)
        for key, shape in keys.items()
    )


def _file_key(key: str, view: str, drop: str) -> str | None:
    return view + key[len(drop) :] if key.startswith(drop) else None


def _index(readings: list[Reading]) -> ViewIndex:
    by_first: dict[str, list[Reading]] = {}
    by_key: dict[str, list[Reading]] = {}
    for reading in readings:
        if reading.candidate.first.startswith(reading.drop):
            by_first.setdefault(reading.first, []).append(reading)
        for key in reading.required_keys:
            by_key.setdefault(key, []).append(reading)
    return ViewIndex(by_first, by_key, frozenset(by_first), frozenset(by_key))


def candidates(linked: LinkedRegistry) -> Pool:
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
    return Pool(
        tuple(
            Candidate(
                mir,
                fingerprint,
                region := common_region(fingerprint.required),
                component_prefixes(region),
                next(iter(fingerprint.required), ""),
                frozenset(k for k in _mentioned(fingerprint) if formats[k] == {fingerprint.format}),
            )
            for mir, fingerprint in printed
        )
    )


def _mentioned(fingerprint: Fingerprint) -> list[str]:
    return [*fingerprint.required, *fingerprint.optional, *fingerprint.forbidden]


def _display(mir: MirId) -> str:
    """The id as people write it: the base variant without its ``:base``."""
    return str(mir._replace(compat=None) if mir.compat == BASE else mir)
