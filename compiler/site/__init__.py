"""``mirc site``: the registry website (DESIGN §7).

The registry is checked (``mirc check``), every model variant planned on every target
(``compiler.plan``), and every page planned here as finished plain values, rendered through the
one Jinja environment (``compiler.render``, templates in ``templates/site/``) into a MkDocs
project beside the output (``DIR-src/``: ``mkdocs.yml`` and ``docs/``, hand-written pages from
``site/docs/`` included), which MkDocs (Material theme) builds with ``--strict`` into ``DIR``.

Modules: ``model`` (what pages read), ``links`` (page paths), ``series``, ``targets``,
``catalogue``, ``reference``, ``downloads`` and ``crosswalk`` (page planners), ``pages`` (the
whole plan and the navigation), ``project`` (sources folder and MkDocs runs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError
from compiler.registry import check_registry
from compiler.render import RenderError
from compiler.resources import data_dir
from compiler.site.model import site_input
from compiler.site.pages import plan_site
from compiler.site.project import MkdocsRun, build_html, project_files, serve
from compiler.write import WriteError, write_tree

DEFAULT_OUT = Path("site") / "build"
DEFAULT_ADDRESS = "127.0.0.1:8000"


@dataclass
class SiteResult:
    """What a site build did: diagnostics, what it wrote, and how long each part took."""

    out_dir: Path
    sources_dir: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    pages: int = 0
    files: int = 0
    render_seconds: float = 0.0
    mkdocs_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "out": str(self.out_dir),
            "sources": str(self.sources_dir),
            "pages": self.pages,
            "files": self.files,
            "render_seconds": round(self.render_seconds, 3),
            "mkdocs_seconds": round(self.mkdocs_seconds, 3),
        }


def sources_dir_for(out_dir: Path) -> Path:
    """Where the MkDocs project of ``out_dir`` is assembled: beside it, as ``DIR-src``."""
    out_dir = out_dir.absolute()
    return out_dir.with_name(out_dir.name + "-src")


def build_site(
    spec_dir: Path,
    out_dir: Path,
    parser: argparse.ArgumentParser,
    sources_dir: Path | None = None,
    serve_at: str | None = None,
) -> SiteResult:
    """Render the site of the registry in ``spec_dir`` and build it into ``out_dir`` (or, with
    ``serve_at``, serve it there with ``mkdocs serve`` until interrupted). ``parser`` is the
    ``mirc`` argument parser the CLI reference is generated from."""
    result = SiteResult(out_dir, sources_dir or sources_dir_for(out_dir))
    started = time.perf_counter()
    checked = check_registry(spec_dir)
    result.diagnostics.extend(checked.diagnostics)
    if not checked.ok or checked.linked is None:
        return result
    try:
        plan = plan_site(site_input(checked.linked, spec_dir), parser)
        files = project_files(plan, data_dir("site"))
        write_tree(result.sources_dir, files)
    except MircError as exc:
        result.diagnostics.extend(exc.diagnostics)
        return result
    except (RenderError, WriteError, OSError) as exc:
        result.diagnostics.append(Diagnostic.error("site-render", str(exc)))
        return result
    result.pages, result.files = len(plan.pages), len(files)
    result.render_seconds = time.perf_counter() - started
    if serve_at is not None:
        _report(result, serve(result.sources_dir, serve_at))
        return result
    started = time.perf_counter()
    try:
        _report(result, build_html(result.sources_dir, out_dir))
    except WriteError as exc:
        result.diagnostics.append(Diagnostic.error("site-write", str(exc)))
    result.mkdocs_seconds = time.perf_counter() - started
    return result


def _report(result: SiteResult, run: MkdocsRun) -> None:
    if not run.ok:
        message = f"mkdocs failed (exit status {run.status}):\n" + "\n".join(run.problems())
        result.diagnostics.append(Diagnostic.error("site-mkdocs", message))


__all__ = ["DEFAULT_ADDRESS", "DEFAULT_OUT", "SiteResult", "build_site", "sources_dir_for"]
