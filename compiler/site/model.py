"""What every page planner reads: the linked registry with each variant's plan, computed once.

Pages are :class:`~compiler.plan.model.PlannedFile`s like the rest of mirc's output (a path, now
relative to the MkDocs ``docs`` folder, a template under ``templates/site/``, finished plain
values and the source they came from); files copied as they are (JSON Schemas, ``mir.json``) are
:class:`StaticFile`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.ir import Series, Target
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry
from compiler.plan import VariantPlan, plan_variant
from compiler.site.crosswalk import CrosswalkIndex, crosswalk_index

GIB = 2**30


@dataclass(frozen=True)
class StaticFile:
    """A file of the docs folder written as it is (a download)."""

    path: str
    data: bytes


@dataclass(frozen=True)
class SiteInput:
    """The linked registry, every model variant's plan (by variant id) and the crosswalk."""

    linked: LinkedRegistry
    plans: Mapping[MirId, VariantPlan]
    crosswalk: CrosswalkIndex
    spec_dir: Path

    @property
    def targets(self) -> list[Target]:
        return [self.linked.targets[key] for key in sorted(self.linked.targets)]

    def series(self, kind: str) -> list[Series]:
        """Every series (``"series"``) or ops entry (``"ops"``), sorted by MIR id."""
        found = [s for s in self.linked.series.values() if s.kind == kind]
        return sorted(found, key=lambda s: str(s.id))


def site_input(linked: LinkedRegistry, spec_dir: Path) -> SiteInput:
    """Plan every model variant on every target (ops entries have nothing to plan)."""
    plans = {
        variant.id: plan_variant(linked, variant)
        for series in linked.series.values()
        if series.kind == "series"
        for variant in series.variants.values()
    }
    return SiteInput(linked, plans, crosswalk_index(linked.taxonomy), spec_dir)


def gib(n: int | float) -> str:
    return f"{n / GIB:.1f} GiB"


def count(n: int | None) -> str | None:
    """A parameter count for people: ``11.90 B``, ``83.7 M``."""
    if n is None:
        return None
    if n >= 10**9:
        return f"{n / 10**9:.2f} B"
    if n >= 10**6:
        return f"{n / 10**6:.1f} M"
    return f"{n:,}"
