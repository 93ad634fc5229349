"""Where each page of the site lives, and links between pages.

Page paths are relative to the MkDocs ``docs`` folder, with forward slashes. Markdown links name
the ``.md`` source (MkDocs checks and rewrites them); raw HTML, which MkDocs leaves alone, gets the
built ``.html`` name (the site is built with ``use_directory_urls: false`` so that it also reads
from the file system).
"""

from __future__ import annotations

import posixpath

from compiler.ir import BASE, Series, Variant
from compiler.lang.mir import MirId

HOME = "index.md"
REGISTRY = "registry/index.md"
OPS_INDEX = "ops/index.md"
TARGETS_INDEX = "targets/index.md"
TAXONOMY = "taxonomy.md"
LANGUAGES_INDEX = "languages/index.md"
NAMING = "naming.md"
CLI = "cli.md"
DOWNLOADS = "downloads/index.md"


def series_page(series: Series) -> str:
    """A series' page mirrors its spec file: ``models/dit/flux-1-dev.md``."""
    return posixpath.splitext(series.path)[0] + ".md"


def target_page(target_id: str) -> str:
    return f"targets/{target_id}.md"


def language_page(grammar: str) -> str:
    return f"languages/{grammar}.md"


def variant_anchor(compat: str) -> str:
    """The id of a variant's heading on its series page."""
    return f"variant-{compat}"


def link(from_page: str, to_page: str, anchor: str | None = None) -> str:
    """A relative Markdown link from one page source to another (or to a downloadable file)."""
    target = posixpath.relpath(to_page, posixpath.dirname(from_page) or ".")
    return f"{target}#{anchor}" if anchor else target


def html_link(from_page: str, to_page: str, anchor: str | None = None) -> str:
    """The same link for raw HTML: to the built ``.html`` file."""
    built = posixpath.splitext(to_page)[0] + ".html" if to_page.endswith(".md") else to_page
    return link(from_page, built, anchor)


def display_id(variant: Variant) -> MirId:
    """A variant's MIR id as users write it: the base variant is the series id itself."""
    return variant.id.series_id if variant.compat == BASE else variant.id
