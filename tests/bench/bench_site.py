"""``mirc site`` on the whole registry against a plain ``mkdocs build --strict`` of the same
pages, already rendered, in the same run (target: site ≤ 1.5 × mkdocs alone)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from compiler.cli import build_parser
from compiler.resources import data_dir
from compiler.site import build_site
from compiler.site.project import QUIET, mkdocs_command
from tests.bench.timing import best_time


def run() -> list[str]:
    spec = data_dir("spec")
    parser = build_parser()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        sources = Path(tmp) / "src"
        last: dict[str, float] = {}

        def site() -> None:
            result = build_site(spec, out, parser, sources_dir=sources)
            assert result.ok, result.diagnostics
            last.update(render=result.render_seconds, pages=result.pages)

        def mkdocs() -> None:
            command = mkdocs_command("build", sources, "--site-dir", str(Path(tmp) / "plain"))
            env = {**os.environ, **QUIET}
            subprocess.run(command, check=True, capture_output=True, env=env)

        site_s = best_time(site, repeat=2)
        mkdocs_s = best_time(mkdocs, repeat=2)
    return [
        f"{last['pages']:.0f} pages: mirc site {site_s:.1f} s (check, plan and render "
        f"{last['render']:.1f} s); mkdocs build --strict of the rendered pages {mkdocs_s:.1f} s",
        f"ratio site / mkdocs = {site_s / mkdocs_s:.2f} (target <= 1.5)",
    ]
