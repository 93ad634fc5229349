"""The page of each model series and ops entry: variants, components as links, generation
defaults, per-target parameters with memory fit, the loader call, training commands, hashes and
fingerprints, the identifier crosswalk, and what uses it."""

from __future__ import annotations

import json
from typing import Any

from compiler.ir import BASE, Backend, Fingerprint, Reference, Series, Variant
from compiler.link import variant_key
from compiler.plan.model import PlannedFile
from compiler.site import links
from compiler.site.model import SiteInput, count
from compiler.site.targets import inference_groups, loader_snippet, training_tabs

HUB = "https://huggingface.co/"
CROSSWALK_COLUMNS = (
    ("air", "AIR", "CivitAI AIR (SOURCE:ID stands for one resource)"),
    ("modelspec", "ModelSpec", "ModelSpec architecture"),
    ("diffusers", "diffusers", "diffusers class"),
)


def display_title(series: Series) -> str:
    """A series' name: its own, its base variant's, its hub repo's, else its MIR series."""
    base = series.variants.get(BASE)
    for name in (series.name, base.name if base else None):
        if name:
            return name
    repos = [
        v.repo for v in ([base] if base else []) + list(series.variants.values()) if v and v.repo
    ]
    return repos[0].rsplit("/", 1)[-1] if repos else series.id.series


def ordered_variants(series: Series) -> list[Variant]:
    """``base`` first, then the others by name."""
    return sorted(series.variants.values(), key=lambda v: (v.compat != BASE, v.compat))


def plan_series_page(site: SiteInput, series: Series) -> PlannedFile:
    page = links.series_page(series)
    variants = ordered_variants(series)
    arch = site.linked.taxonomy.architectures.get(series.id.arch)
    context = {
        "title": display_title(series),
        "mir": str(series.id),
        "arch": series.id.arch,
        "arch_description": arch.description if arch else series.id.arch,
        "taxonomy_href": links.link(page, links.TAXONOMY, f"arch-{series.id.arch}"),
        "description": series.description,
        "links": sorted(series.links.items()),
        "source": f"spec/{series.path}",
        "targets": len(site.targets),
        "overview": [_overview_row(v) for v in variants],
        "crosswalk": _crosswalk(site, series, variants),
        "variants": [_variant(site, series, v, page) for v in variants],
        "inference": inference_groups(site, variants, page),
        "used_by": _used_by(site, series, page),
    }
    template = "site/series.md.j2" if series.kind == "series" else "site/ops.md.j2"
    return PlannedFile(page, template, context, f"spec/{series.path}")


def _overview_row(variant: Variant) -> dict[str, Any]:
    return {
        "compat": variant.compat,
        "anchor": links.variant_anchor(variant.compat),
        "mir": str(links.display_id(variant)),
        "name": variant.name,
        "repo": variant.repo,
        "repo_href": HUB + variant.repo if variant.repo else None,
        "backends": ", ".join(_backend_name(b) for b in variant.backends),
        "dtype": variant.dtype,
    }


def _backend_name(backend: Backend) -> str:
    if backend.package is None:
        return "settings for the base variant's backend"
    return f"{backend.package}.{backend.class_name}" if backend.class_name else backend.package


def _crosswalk(site: SiteInput, series: Series, variants: list[Variant]) -> dict[str, Any]:
    """Rows of MIR id, AIR, ModelSpec architecture and diffusers class; empty columns dropped."""
    rows = []
    for variant in variants:
        names = site.crosswalk.identifiers(series, variant)
        rows.append(
            {
                "mir": str(links.display_id(variant)),
                "air": ", ".join(names.airs),
                "modelspec": names.modelspec or "",
                "diffusers": names.diffusers_class or "",
            }
        )
    columns = [
        {"key": key, "heading": heading, "meaning": meaning}
        for key, heading, meaning in CROSSWALK_COLUMNS
        if any(r[key] for r in rows)
    ]
    return {"columns": columns, "rows": rows}


def _variant(site: SiteInput, series: Series, variant: Variant, page: str) -> dict[str, Any]:
    plan = site.plans.get(variant.id)
    context: dict[str, Any] = {
        "compat": variant.compat,
        "anchor": links.variant_anchor(variant.compat),
        "mir": str(links.display_id(variant)),
        "name": variant.name,
        "description": variant.description,
        "facts": _facts(
            variant,
            plan.counts.network if plan else variant.parameters,
            plan.counts.total if plan else None,
        ),
        "components": _components(site, variant, page),
        "backends": [_backend(site, b, page) for b in variant.backends],
        "file_hashes": [
            {"sha256": h.sha256, "generation": _settings(h.generation)} for h in variant.file_hashes
        ],
        "layer_hashes": list(variant.layer_hashes),
        "fingerprints": [_fingerprint(f) for f in variant.fingerprints],
        "loader": None,
        "training": [],
    }
    if plan is not None:
        context["loader"] = loader_snippet(series, variant, plan, site)
        context["training"] = training_tabs(site, series, plan, page)
    return context


def _facts(
    variant: Variant, parameters: int | None, total: int | None
) -> list[tuple[str, str, str | None]]:
    """Label, value, and an optional link target."""
    rows: list[tuple[str, str | None, str | None]] = [
        ("hub repo", variant.repo, HUB + variant.repo if variant.repo else None),
        ("parameters", count(parameters), None),
        ("with components", count(total) if total != parameters else None, None),
        ("objective", variant.objective, None),
        ("denoiser component", variant.denoiser, None),
        ("license", variant.license, None),
        ("dtype", variant.dtype, None),
    ]
    return [(label, value, href) for label, value, href in rows if value is not None]


def _components(site: SiteInput, variant: Variant, page: str) -> list[dict[str, str]]:
    refs = [(role, variant.components[role]) for role in sorted(variant.components)]
    if variant.base_model is not None:
        refs.append(("base model", variant.base_model))
    return [_reference(site, ref, role, page) for role, ref in refs]


def _reference(site: SiteInput, ref: Reference, label: str, page: str) -> dict[str, str]:
    """A reference as a link to the page (and heading) of the variant it resolves to."""
    target = site.linked.variants[variant_key(ref.target, site.linked.taxonomy)]
    series = site.linked.series_of(target)
    return {
        "role": label,
        "mir": str(ref.target),
        "href": links.link(page, links.series_page(series), links.variant_anchor(target.compat)),
        "title": display_title(series),
    }


def _backend(site: SiteInput, backend: Backend, page: str) -> dict[str, Any]:
    context: dict[str, Any] = {
        "name": _backend_name(backend),
        "args": _settings(backend.args or {}),
        "generation": _settings(backend.generation),
        "scheduler_args": _settings(backend.scheduler_args or {}),
    }
    for role in ("precision", "scheduler"):
        ref: Reference | None = getattr(backend, role)
        context[role] = _reference(site, ref, role, page) if ref is not None else None
    return context


def _settings(values: Any) -> list[tuple[str, str]]:
    """Keyword settings as (name, JSON value) rows, sorted by name."""
    return [(str(k), json.dumps(values[k], ensure_ascii=False)) for k in sorted(values)]


def _fingerprint(fingerprint: Fingerprint) -> dict[str, Any]:
    def keys(table: Any) -> list[tuple[str, str]]:
        return [(k, "×".join(map(str, table[k])) or "scalar") for k in sorted(table)]

    return {
        "format": fingerprint.format,
        "component": fingerprint.component,
        "tensors": fingerprint.tensors,
        "parameters": count(fingerprint.parameters),
        "required": keys(fingerprint.required),
        "optional": keys(fingerprint.optional),
        "forbidden": sorted(fingerprint.forbidden),
        "blocks": [
            (name, ", ".join(prefixes)) for name, prefixes in sorted(fingerprint.blocks.items())
        ],
        "components": [
            (name, ", ".join(prefixes)) for name, prefixes in sorted(fingerprint.components.items())
        ],
    }


def _used_by(site: SiteInput, series: Series, page: str) -> list[dict[str, str]]:
    """Every variant elsewhere that names one of this series' variants, and in which role."""
    rows = []
    for variant in ordered_variants(series):
        key = variant.id.with_compat(variant.compat)
        for user_id, role in site.linked.used_by.get(key, ()):
            user = site.linked.variants[user_id]
            user_series = site.linked.series_of(user)
            if user_series.id == series.id:
                continue
            rows.append(
                {
                    "variant": str(links.display_id(variant)),
                    "user": str(links.display_id(user)),
                    "role": role,
                    "href": links.link(
                        page, links.series_page(user_series), links.variant_anchor(user.compat)
                    ),
                }
            )
    return sorted(rows, key=lambda r: (r["user"], r["role"], r["variant"]))
