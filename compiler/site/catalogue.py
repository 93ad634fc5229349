"""The registry table (every series and ops entry, filterable and sortable in the browser), the
ops index and the taxonomy page."""

from __future__ import annotations

from collections import Counter
from typing import Any

from compiler.ir import Series
from compiler.lang.mir import DOMAIN_ALIASES
from compiler.plan.model import PlannedFile
from compiler.site import links
from compiler.site.model import SiteInput
from compiler.site.series import display_title, ordered_variants


def plan_catalogue_pages(site: SiteInput) -> list[PlannedFile]:
    return [_registry_page(site), _ops_index(site), _taxonomy_page(site)]


def _everything(site: SiteInput) -> list[Series]:
    return sorted(site.linked.series.values(), key=lambda s: str(s.id))


def _registry_page(site: SiteInput) -> PlannedFile:
    page = links.REGISTRY
    everything = _everything(site)
    rows = [
        {
            "mir": str(series.id),
            "title": display_title(series),
            "arch": series.id.arch,
            "domain": series.id.domain,
            "kind": "ops" if series.kind == "ops" else "model",
            "variants": len(series.variants),
            "compats": ", ".join(v.compat for v in ordered_variants(series)),
            "href": links.html_link(page, links.series_page(series)),
        }
        for series in everything
    ]
    context = {
        "rows": rows,
        "domains": _choices(Counter(s.id.domain for s in everything)),
        "archs": _choices(Counter(s.id.arch for s in everything)),
        "series": sum(s.kind == "series" for s in everything),
        "ops": sum(s.kind == "ops" for s in everything),
        "variants": sum(len(s.variants) for s in everything),
    }
    return PlannedFile(page, "site/registry.md.j2", context, "spec/models/")


def _choices(counts: Counter[str]) -> list[dict[str, Any]]:
    return [{"value": name, "count": counts[name]} for name in sorted(counts)]


def _ops_index(site: SiteInput) -> PlannedFile:
    page = links.OPS_INDEX
    groups: dict[str, list[dict[str, Any]]] = {}
    for series in site.series("ops"):
        groups.setdefault(series.id.arch, []).append(
            {
                "mir": str(series.id),
                "title": display_title(series),
                "href": links.link(page, links.series_page(series)),
                "compats": ", ".join(v.compat for v in ordered_variants(series)),
                "classes": ", ".join(
                    sorted(
                        {
                            b.class_name
                            for v in series.variants.values()
                            for b in v.backends
                            if b.class_name
                        }
                    )
                ),
            }
        )
    taxonomy = site.linked.taxonomy.architectures
    context = {
        "groups": [
            {
                "arch": arch,
                "description": taxonomy[arch].description if arch in taxonomy else arch,
                "entries": entries,
            }
            for arch, entries in sorted(groups.items())
        ]
    }
    return PlannedFile(page, "site/ops-index.md.j2", context, "spec/ops/")


def _taxonomy_page(site: SiteInput) -> PlannedFile:
    page = links.TAXONOMY
    taxonomy = site.linked.taxonomy
    used = Counter(s.id.arch for s in site.linked.series.values())
    domain_aliases: dict[str, list[str]] = {}
    for alias, domain in sorted(DOMAIN_ALIASES.items()):
        domain_aliases.setdefault(domain, []).append(alias)
    context = {
        "domains": [
            {"name": name, "description": text, "aliases": ", ".join(domain_aliases.get(name, []))}
            for name, text in taxonomy.domains.items()
        ],
        "architectures": [
            {
                "name": arch.name,
                "anchor": f"arch-{arch.name}",
                "description": arch.description,
                "aliases": ", ".join(arch.aliases),
                "count": used[arch.name],
                "href": links.html_link(page, links.REGISTRY, f"arch={arch.name}"),
            }
            for arch in sorted(taxonomy.architectures.values(), key=lambda a: a.name)
        ],
    }
    return PlannedFile(page, "site/taxonomy.md.j2", context, "spec/taxonomy.yaml")
