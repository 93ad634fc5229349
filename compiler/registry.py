"""The registry as one call: load → validate → link, with every diagnostic collected.

This is what ``mirc check`` runs, and what later stages (plan, render, the tools) start from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, DiagnosticSink
from compiler.lang.mecha.check import MirResolver, ResolvedModel
from compiler.lang.mecha.files import check_recipe_files
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry, link, variant_key
from compiler.load import discovered, load_specs
from compiler.resources import data_dir
from compiler.validate import validate

RECIPES = "recipes"


@dataclass(frozen=True)
class CheckResult:
    """The linked registry (None when the taxonomy itself is unusable) and all diagnostics."""

    linked: LinkedRegistry | None
    diagnostics: tuple[Diagnostic, ...]
    files: int

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def summary(self) -> dict[str, int]:
        counts = {"files": self.files, "errors": sum(d.is_error for d in self.diagnostics)}
        counts["warnings"] = len(self.diagnostics) - counts["errors"]
        if self.linked is not None:
            kinds = [s.kind for s in self.linked.series.values()]
            counts["series"] = kinds.count("series")
            counts["ops"] = kinds.count("ops")
            counts["variants"] = len(self.linked.variants)
            counts["targets"] = len(self.linked.targets)
        return counts


def recipe_resolver(linked: LinkedRegistry) -> MirResolver:
    """Resolve a recipe's ``model "mir:…"`` input through the registry (no file yet: which file
    holds the model is the merge's business)."""

    def resolve(mir: MirId) -> ResolvedModel | None:
        key = variant_key(mir, linked.taxonomy)
        return ResolvedModel(str(key)) if key in linked.variants else None

    return resolve


def lazy_resolver(spec_dir: Path) -> MirResolver:
    """A resolver that loads the registry the first time a recipe names a MIR id."""
    loaded: list[MirResolver] = []

    def resolve(mir: MirId) -> ResolvedModel | None:
        if not loaded:
            linked = check_registry(spec_dir).linked
            loaded.append(recipe_resolver(linked) if linked is not None else lambda _: None)
        return loaded[0](mir)

    return resolve


def _check_recipes(spec_dir: Path, linked: LinkedRegistry) -> list[Diagnostic]:
    """The registry's example recipes: valid, and every MIR id they use resolves."""
    paths = sorted((spec_dir / RECIPES).glob("*.mecha")) if (spec_dir / RECIPES).is_dir() else []
    report = check_recipe_files(paths, recipe_resolver(linked))
    return [d for d in report.diagnostics if d.is_error]


def check_registry(spec_dir: Path, deep: bool = False) -> CheckResult:
    """Load, validate and link the registry in ``spec_dir``; never stops at the first problem."""
    sink = DiagnosticSink()
    shipped = data_dir("spec")
    specs = load_specs(spec_dir, sink, shipped)
    schema_dir = spec_dir / "schema" if (spec_dir / "schema").is_dir() else shipped / "schema"
    taxonomy, registry = validate(specs, spec_dir, schema_dir, sink, deep=deep)
    valid = {s.path for s in registry.series} | {t.path for t in registry.targets}
    rejected = frozenset(rel for rel in discovered(spec_dir) if rel not in valid)
    linked = link(registry, taxonomy, sink, rejected) if taxonomy is not None else None
    if linked is not None:
        sink.extend(_check_recipes(spec_dir, linked))
    return CheckResult(linked, tuple(sink), len(specs))
