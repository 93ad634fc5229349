"""The identifier crosswalk of a variant: its MIR id, CivitAI AIR, ModelSpec architecture and
diffusers class.

* AIR: every AIR ecosystem whose crosswalk entry (``compiler/lang/air_crosswalk.yaml``) converts
  a checkpoint of that ecosystem back to exactly this variant, checked by running the conversion;
* ModelSpec: the table in ``modelspec.yaml`` beside this module;
* diffusers class: the class of the variant's ``diffusers`` backend, or of the base variant's
  when the variant only adds settings to it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

from compiler.ir import BASE, Series, Variant
from compiler.lang.air import Air, air_to_mir, load_crosswalk
from compiler.link import variant_key
from compiler.taxonomy import Taxonomy

# The AIR shown for a family: a checkpoint of it; source and id stand for any one resource.
AIR_TYPE = "checkpoint"
AIR_ANY = "SOURCE:ID"


@dataclass(frozen=True)
class Identifiers:
    """The names one variant goes by in other schemes (empty or None where it has none)."""

    airs: tuple[str, ...]
    modelspec: str | None
    diffusers_class: str | None


@dataclass(frozen=True)
class CrosswalkIndex:
    """Both tables keyed by canonical MIR variant key (``info.dit.flux-1-dev:base``)."""

    taxonomy: Taxonomy
    airs: Mapping[str, tuple[str, ...]]
    modelspec: Mapping[str, str]

    def identifiers(self, series: Series, variant: Variant) -> Identifiers:
        key = variant_key(variant.id, self.taxonomy).key
        return Identifiers(
            airs=self.airs.get(key, ()),
            modelspec=self.modelspec.get(key),
            diffusers_class=diffusers_class(series, variant),
        )


def crosswalk_index(taxonomy: Taxonomy) -> CrosswalkIndex:
    """The AIRs whose conversion lands on each variant, and the ModelSpec table."""
    index: dict[str, list[str]] = {}
    for ecosystem in sorted(load_crosswalk().ecosystems):
        converted = air_to_mir(Air(ecosystem, AIR_TYPE, "civitai", "0")).mir
        if converted is not None:
            air = f"urn:air:{ecosystem}:{AIR_TYPE}:{AIR_ANY}"
            index.setdefault(variant_key(converted, taxonomy).key, []).append(air)
    airs = {key: tuple(names) for key, names in index.items()}
    return CrosswalkIndex(taxonomy, airs, modelspec_table())


@functools.cache
def modelspec_table() -> Mapping[str, str]:
    """MIR variant key → ModelSpec architecture (trusted package data, so ``safe_load``)."""
    text = resources.files("compiler.site").joinpath("modelspec.yaml").read_text("utf-8")
    return {str(k): str(v) for k, v in yaml.safe_load(text).items()}


def diffusers_class(series: Series, variant: Variant) -> str | None:
    """The diffusers class that loads ``variant`` (its own backend's, else its base's)."""
    for candidate in (variant, series.variants.get(BASE)):
        if candidate is None:
            continue
        for backend in candidate.backends:
            if backend.package == "diffusers" and backend.class_name:
                return backend.class_name
    return None
