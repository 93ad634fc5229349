"""Every page of the site, planned: generated page sources, downloads, and the navigation."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from compiler.plan.model import PlannedFile
from compiler.site import links
from compiler.site.catalogue import plan_catalogue_pages
from compiler.site.downloads import plan_downloads
from compiler.site.model import SiteInput, StaticFile
from compiler.site.reference import (
    grammar_files,
    grammar_title,
    plan_cli_page,
    plan_language_pages,
    plan_naming_page,
)
from compiler.site.series import plan_series_page
from compiler.site.targets import plan_target_pages


@dataclass(frozen=True)
class SitePlan:
    """Generated pages (rendered later), files copied as they are, and the MkDocs ``nav``."""

    pages: tuple[PlannedFile, ...]
    files: tuple[StaticFile, ...]
    nav: list[Any]


def plan_site(site: SiteInput, parser: argparse.ArgumentParser) -> SitePlan:
    """Plan every generated page of the registry ``site`` describes, sorted by path."""
    downloads_page, downloads = plan_downloads(site)
    pages = [
        *(plan_series_page(site, s) for s in site.series("series")),
        *(plan_series_page(site, s) for s in site.series("ops")),
        *plan_catalogue_pages(site),
        *plan_target_pages(site),
        *plan_language_pages(),
        plan_naming_page(),
        plan_cli_page(parser),
        downloads_page,
    ]
    return SitePlan(
        tuple(sorted(pages, key=lambda p: p.path)),
        tuple(sorted(downloads, key=lambda f: f.path)),
        navigation(),
    )


def navigation() -> list[Any]:
    """The site's tabs and their pages; series, ops and target pages are reached from the
    tables, so that every page does not carry a menu of hundreds of entries."""
    languages = [{"Overview": links.LANGUAGES_INDEX}]
    languages += [{grammar_title(name): links.language_page(name)} for name, _ in grammar_files()]
    return [
        {"Home": links.HOME},
        {
            "Registry": [
                {"Models": links.REGISTRY},
                {"Ops": links.OPS_INDEX},
                {"Targets": links.TARGETS_INDEX},
                {"Taxonomy": links.TAXONOMY},
            ]
        },
        {"Languages": languages},
        {
            "Reference": [
                {"Naming rules": links.NAMING},
                {"Command line": links.CLI},
                {"Downloads": links.DOWNLOADS},
            ]
        },
    ]
