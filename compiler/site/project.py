"""The MkDocs project: hand-written pages (``site/docs/``) and generated ones assembled into one
sources folder with its ``mkdocs.yml``, then MkDocs run on it.

The sources folder is deterministic (the same registry gives the same bytes) and written
atomically; so is the built site: MkDocs builds into a staging folder beside the output, which
replaces the output only when the build succeeded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from compiler.render import RenderError, render
from compiler.site.pages import SitePlan
from compiler.write import WriteError, staging_dir, swap_in

CONFIG = "mkdocs.yml"
DOCS = "docs"
# Material prints a banner about its successor on every run unless told not to.
QUIET = {"NO_MKDOCS_2_WARNING": "1"}


@dataclass(frozen=True)
class MkdocsRun:
    """How a MkDocs run ended: its exit status and what it printed."""

    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def problems(self) -> list[str]:
        """The warning and error lines (what makes ``--strict`` fail)."""
        lines = self.output.splitlines()
        found = [line for line in lines if line.startswith(("WARNING", "ERROR"))]
        return found or lines[-10:]


def project_files(
    plan: SitePlan, site_dir: Path, templates: Path | None = None
) -> dict[str, bytes]:
    """Every file of the sources folder: ``mkdocs.yml`` and ``docs/`` (relative path → bytes)."""
    files: dict[str, bytes] = {}
    docs = site_dir / DOCS
    for path in sorted(docs.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[f"{DOCS}/{path.relative_to(docs).as_posix()}"] = path.read_bytes()
    generated: dict[str, bytes] = {}
    for page in plan.pages:
        text = render(page.template, page.context, templates)
        generated[f"{DOCS}/{page.path}"] = text.encode("utf-8")
    for file in plan.files:
        generated[f"{DOCS}/{file.path}"] = file.data
    clash = sorted(set(files) & set(generated))
    if clash:
        raise RenderError(f"site/{clash[0]} is hand-written but also generated; rename it")
    files.update(generated)
    config = {"config": (site_dir / CONFIG).read_text("utf-8"), "nav": plan.nav}
    files[CONFIG] = render("site/mkdocs.yml.j2", config, templates).encode("utf-8")
    return files


def mkdocs_command(action: str, sources: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mkdocs",
        action,
        "--strict",
        "-f",
        str(sources / CONFIG),
        *options,
    ]


def build_html(sources: Path, out_dir: Path) -> MkdocsRun:
    """``mkdocs build --strict`` of ``sources`` into ``out_dir``, which changes only on success."""
    staging = staging_dir(out_dir)
    done = subprocess.run(
        mkdocs_command("build", sources, "--site-dir", str(staging)),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **QUIET},
    )
    run = MkdocsRun(done.returncode, done.stdout + done.stderr)
    if not run.ok:
        shutil.rmtree(staging, ignore_errors=True)
        return run
    try:
        swap_in(staging, out_dir)
    except OSError as exc:
        raise WriteError(f"{out_dir}: {exc}") from exc
    return run


def serve(sources: Path, address: str) -> MkdocsRun:
    """``mkdocs serve`` of ``sources`` on ``address`` until interrupted."""
    command = mkdocs_command("serve", sources, "--dev-addr", address)
    done = subprocess.run(command, check=False, env={**os.environ, **QUIET})
    return MkdocsRun(done.returncode, "")
