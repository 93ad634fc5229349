"""Parameter counts from the registry: a variant's own network, and the components it links to.

A fingerprint records the parameter total of its checkpoint, computed from every shape when the
fingerprint was taken. The network's count prefers a fingerprint of the network alone (the
diffusers layout, or one naming the variant's denoiser as its component), then the variant's
``parameters`` field, then the base variant of the same series.
"""

from __future__ import annotations

from compiler.ir import BASE, Fingerprint, Variant
from compiler.link import LinkedRegistry
from compiler.plan.model import ParameterCounts


def network_parameters(linked: LinkedRegistry, variant: Variant) -> int | None:
    """Parameters of ``variant``'s own network, or None when the registry does not say."""
    own = _from_fingerprints(variant.fingerprints, variant.denoiser) or variant.parameters
    if own is not None or variant.compat == BASE:
        return own
    base = linked.series_of(variant).variants.get(BASE)
    return network_parameters(linked, base) if base is not None else None


def _from_fingerprints(fingerprints: tuple[Fingerprint, ...], denoiser: str | None) -> int | None:
    alone = [
        f.parameters
        for f in fingerprints
        if f.parameters is not None and (f.format == "diffusers" or f.component == denoiser)
    ]
    return max(alone) if alone else None


def parameter_counts(linked: LinkedRegistry, variant: Variant) -> ParameterCounts:
    """The network's parameters and each linked component's, in component-name order."""
    components = tuple(
        (role, network_parameters(linked, linked.resolve(variant, f"components.{role}")))
        for role in sorted(variant.components)
    )
    return ParameterCounts(network_parameters(linked, variant), components)
