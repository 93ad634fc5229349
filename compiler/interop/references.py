"""MIR references inside mir.json (``precision``, ``scheduler``) → MIR ids that resolve.

Upstream writes references with dots only (``ops.precision.float.f16``, ``ops.scheduler.lcm``).
Before any entry is converted, :func:`name_index` lists every series and the variant names it
will have, so that each reference is resolved against the whole import: to
``mir:DOMAIN.ARCH.SERIES:COMPAT`` (rule ``dotted-reference``), to a series' only variant when it
names no compatibility and the series has no base (``reference-sole-variant``), or to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.ir import BASE
from compiler.taxonomy import Taxonomy

STAR = "*"
SeriesKey = tuple[str, str, str]  # domain, canonical architecture, series name


def mir_name(text: str) -> str:
    """``text`` as a MIR name: lowercase, each run of other characters one hyphen, trimmed."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def variant_name(compat: str) -> str:
    """The variant an upstream compatibility key becomes (``*`` is ``base``)."""
    return BASE if compat == STAR else mir_name(compat)


def series_key(key: str, taxonomy: Taxonomy) -> SeriesKey | None:
    """Domain, canonical architecture and series name of an upstream key; None if malformed."""
    parts = key.split(".", 2)
    if len(parts) != 3:
        return None
    domain, arch, series = parts
    canonical = taxonomy.canonical_arch(arch)
    if domain not in taxonomy.domains or canonical is None:
        return None
    return domain, canonical, mir_name(series)


def name_index(database: Mapping[str, Any], taxonomy: Taxonomy) -> dict[SeriesKey, list[str]]:
    """Every series of the database with the names of its variants, in upstream order."""
    index: dict[SeriesKey, list[str]] = {}
    for key, body in database.items():
        found = series_key(key, taxonomy)
        if found is None or not isinstance(body, dict):
            continue
        names = index.setdefault(found, [])
        names.extend(n for n in map(variant_name, body) if n not in names)
    return index


@dataclass(frozen=True, slots=True)
class Resolved:
    """A reference resolved within the import: the MIR id, and the rules that shaped it."""

    mir: str
    rules: tuple[str, ...]


def resolve_reference(
    text: str, index: Mapping[SeriesKey, list[str]], taxonomy: Taxonomy
) -> Resolved | None:
    """The MIR id an upstream reference names in the import, or None when it names nothing."""
    parts = text.split(".", 3)
    if len(parts) < 3:
        return None
    found = series_key(".".join(parts[:3]), taxonomy)
    names = index.get(found) if found is not None else None
    if found is None or names is None:
        return None
    series_id = "mir:{}.{}.{}".format(*found)
    if len(parts) == 4:
        compat = mir_name(parts[3])
        if compat not in names:
            return None
        return Resolved(f"{series_id}:{compat}", ("dotted-reference",))
    if BASE in names:
        return Resolved(series_id, ("dotted-reference",))
    if len(names) == 1:
        return Resolved(f"{series_id}:{names[0]}", ("dotted-reference", "reference-sole-variant"))
    return None
