"""The link stage: every MIR id a spec mentions must resolve (DESIGN §4).

Pass one indexes every series, variant and target and reports duplicates with both ends; pass two
resolves every reference (components, scheduler, precision, base model), reporting an unresolved
one at the referring file:line with the nearest existing ids, and then looks for cycles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from compiler.diagnostics import Diagnostic, DiagnosticSink, Span, suggest
from compiler.ir import BASE, Reference, Registry, Series, Target, Variant
from compiler.lang.mir import MirId
from compiler.taxonomy import Taxonomy


@dataclass(frozen=True)
class LinkedRegistry:
    """The registry with every reference resolved to the variant it names."""

    registry: Registry
    taxonomy: Taxonomy
    series: Mapping[MirId, Series]
    variants: Mapping[MirId, Variant]
    targets: Mapping[str, Target]
    resolved: Mapping[tuple[MirId, str], MirId] = field(repr=False)
    used_by: Mapping[MirId, tuple[tuple[MirId, str], ...]] = field(repr=False)

    def resolve(self, variant: Variant, role: str) -> Variant:
        """The variant that ``variant``'s reference ``role`` names."""
        return self.variants[self.resolved[(variant.id, role)]]

    def series_of(self, variant: Variant) -> Series:
        return self.series[variant.id.series_id]


def variant_key(mir: MirId, taxonomy: Taxonomy) -> MirId:
    """The key a reference resolves by: canonical architecture, ``base`` for no compatibility,
    no modifier."""
    canonical = taxonomy.normalise(mir)
    return MirId(canonical.domain, canonical.arch, canonical.series, canonical.compat or BASE)


def link(
    registry: Registry,
    taxonomy: Taxonomy,
    sink: DiagnosticSink,
    rejected: frozenset[str] = frozenset(),
) -> LinkedRegistry:
    """Resolve every reference of ``registry``; problems go to ``sink``.

    ``rejected`` holds the spec paths (relative to the spec folder) of files that were already
    reported as invalid: references into them are not reported a second time.
    """
    series = _index_series(registry, sink)
    variants = {v.id.with_compat(v.compat): v for s in series.values() for v in s.variants.values()}
    targets = _index_targets(registry, sink)
    resolved: dict[tuple[MirId, str], MirId] = {}
    used_by: dict[MirId, list[tuple[MirId, str]]] = {}
    for variant in variants.values():
        for ref in variant.references:
            key = variant_key(ref.target, taxonomy)
            if key not in variants:
                if not _in_rejected_file(key, rejected):
                    sink.add(_unresolved(ref, key, variants))
                continue
            resolved[(variant.id, ref.role)] = key
            used_by.setdefault(key, []).append((variant.id, ref.role))
    for cycle in _cycles(variants, resolved):
        sink.add(_cycle_diagnostic(cycle, variants))
    return LinkedRegistry(
        registry,
        taxonomy,
        series,
        variants,
        targets,
        resolved,
        {k: tuple(sorted(v)) for k, v in used_by.items()},
    )


def _in_rejected_file(key: MirId, rejected: frozenset[str]) -> bool:
    folder = "ops" if key.domain == "ops" else "models"
    return f"{folder}/{key.arch}/{key.series}.yaml" in rejected


def _index_series(registry: Registry, sink: DiagnosticSink) -> dict[MirId, Series]:
    index: dict[MirId, Series] = {}
    for series in registry.series:
        first = index.get(series.id)
        if first is not None:
            sink.add(_duplicate(str(series.id), series.span, first.span))
            continue
        index[series.id] = series
    return index


def _index_targets(registry: Registry, sink: DiagnosticSink) -> dict[str, Target]:
    index: dict[str, Target] = {}
    for target in registry.targets:
        first = index.get(target.id)
        if first is not None:
            sink.add(_duplicate(f"target {target.id}", target.span, first.span))
            continue
        index[target.id] = target
    return index


def _duplicate(what: str, span: Span, first: Span) -> Diagnostic:
    return Diagnostic.error(
        "link-duplicate", f"{what} is defined twice", span, (f"first defined at {first.location}",)
    )


def _unresolved(ref: Reference, key: MirId, variants: Mapping[MirId, Variant]) -> Diagnostic:
    same_series = [str(v) for v in variants if v.series_id == key.series_id]
    pool = same_series or [str(v) for v in variants]
    nearest = suggest(str(key), pool) or sorted(same_series)[:3]
    notes = []
    if nearest:
        notes.append("nearest existing: " + ", ".join(nearest))
    if same_series:
        notes.append(f"{key.series_id} has no variant {key.compat!r}")
    message = f"unresolved MIR id {ref.target} ({ref.role})"
    return Diagnostic.error("link-unresolved", message, ref.span, notes)


def _cycles(
    variants: Mapping[MirId, Variant], resolved: Mapping[tuple[MirId, str], MirId]
) -> Iterator[list[tuple[MirId, str]]]:
    """Each cycle of references once, as the list of (variant, role) edges that make it."""
    edges: dict[MirId, list[tuple[str, MirId]]] = {}
    for (source, role), target in sorted(resolved.items()):
        edges.setdefault(source, []).append((role, target))
    state: dict[MirId, int] = {}  # 1 on the stack, 2 done
    stack: list[tuple[MirId, str]] = []

    def visit(node: MirId) -> Iterator[list[tuple[MirId, str]]]:
        state[node] = 1
        for role, target in edges.get(node, ()):
            stack.append((node, role))
            if state.get(target) == 1:
                start = next(i for i, (n, _) in enumerate(stack) if n == target)
                yield list(stack[start:])
            elif target not in state:
                yield from visit(target)
            stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            yield from visit(node)


def _cycle_diagnostic(
    cycle: list[tuple[MirId, str]], variants: Mapping[MirId, Variant]
) -> Diagnostic:
    first_id, first_role = cycle[0]
    ref = next(r for r in variants[first_id].references if r.role == first_role)
    path = " -> ".join(f"{mir} ({role})" for mir, role in cycle)
    notes = [f"{mir} {role} at {_ref_span(variants[mir], role).location}" for mir, role in cycle]
    return Diagnostic.error("link-cycle", f"reference cycle: {path}", ref.span, notes)


def _ref_span(variant: Variant, role: str) -> Span:
    return next(r.span for r in variant.references if r.role == role)
