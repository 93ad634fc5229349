"""``mirc build``: check the registry, plan every output, render, lint and write ``generated/``.

Deterministic (sorted everything, no timestamps), atomic (see :mod:`compiler.write`) and
incremental: ``generated/manifest.json`` records a digest of every input (spec files, schemas,
templates, mirc's own source) and, per output, the digest of what it was rendered from. When no
input changed and the outputs are intact nothing is read, rendered or written; otherwise only
outputs whose template or values changed are rendered again.

Safe (RELIABILITY rule 6): every freshly rendered ``.py`` must parse and pass ``ruff check``
and ``ruff format --check`` (ruff's own binary, two processes started
as soon as the Python files are rendered, so they run while the JSON renders) before the new
tree can replace ``generated/``. Files go into the staging tree as they are rendered; a failed
render or lint leaves ``generated/`` as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compiler import jsontext
from compiler.diagnostics import Diagnostic
from compiler.gcpause import paused_gc
from compiler.interop.exporter import database_text, export_database
from compiler.ir import Series
from compiler.link import LinkedRegistry
from compiler.load import discover
from compiler.plan import plan_params_file, plan_variant
from compiler.plan.loader import TEMPLATE as LOADER_TEMPLATE
from compiler.plan.loader import plan_loader, plan_loader_runtime
from compiler.plan.model import PlannedFile
from compiler.plan.trainer import TEMPLATE as TRAINING_TEMPLATE
from compiler.plan.trainer import plan_training_files, plan_training_runtime
from compiler.registry import check_registry
from compiler.render import RenderError, render
from compiler.resources import PACKAGE_DIR, data_dir
from compiler.write import StagedTree, WriteError, read_tree, recover

# Not committed (see .gitignore): a fresh clone's first build renders everything.
MANIFEST = "manifest.json"
UPSTREAM_FILE = "mir.json"
FIX_COMMAND = "mirc build"


@dataclass
class BuildResult:
    """What a build did: diagnostics, the files it (re)rendered, and whether anything changed."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    rendered: int = 0
    changed: list[str] = field(default_factory=list)
    up_to_date: bool = False
    diff: str = ""

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def build(
    spec_dir: Path, out_dir: Path, check: bool = False, templates: Path | None = None
) -> BuildResult:
    """Build ``out_dir`` from ``spec_dir``; with ``check``, compare instead of writing."""
    with paused_gc():
        return _build(spec_dir, out_dir, check, templates)


def _build(spec_dir: Path, out_dir: Path, check: bool, templates: Path | None) -> BuildResult:
    templates = templates or data_dir("templates")
    if not check:
        recover(out_dir)  # what a killed build may have left beside out_dir
    inputs = inputs_digest(spec_dir, templates)
    manifest = _read_manifest(out_dir)
    if not check and manifest.get("inputs") == inputs and _intact(out_dir, manifest):
        return BuildResult(files=len(manifest.get("files") or ()), up_to_date=True)  # type: ignore[arg-type]
    checked = check_registry(spec_dir)
    result = BuildResult(diagnostics=list(checked.diagnostics))
    if not checked.ok or checked.linked is None:
        return result
    planned = plan_files(checked.linked)
    if check:
        rendered = _render_all(planned, out_dir, manifest, templates, result, None)
        if rendered is not None:
            existing = _compare(result, out_dir, rendered[0])
            result.diff = _diff(existing, rendered[0], result.changed)
        return result
    try:
        with StagedTree(out_dir) as tree:
            _write(result, planned, inputs, manifest, templates, tree)
    except (OSError, WriteError) as exc:
        result.diagnostics.append(Diagnostic.error("build-write", f"{out_dir}: {exc}"))
    return result


def _write(
    result: BuildResult,
    planned: list[PlannedFile],
    inputs: str,
    manifest: dict[str, object],
    templates: Path,
    tree: StagedTree,
) -> None:
    """Render into ``tree`` (reusing what is unchanged) and swap it in when anything changed."""
    rendered = _render_all(planned, tree.out_dir, manifest, templates, result, tree)
    if rendered is None:
        return
    files, keys = rendered
    _compare(result, tree.out_dir, files)
    if result.changed or manifest.get("inputs") != inputs:
        tree.write(MANIFEST, _manifest_bytes(inputs, files, keys))
        tree.commit()


def _compare(result: BuildResult, out_dir: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    """Record in ``result`` how ``files`` differ from ``out_dir``; returns what is there."""
    existing = read_tree(out_dir)
    existing.pop(MANIFEST, None)
    result.files = len(files)
    result.changed = sorted(
        p for p in set(files) | set(existing) if files.get(p) != existing.get(p)
    )
    return existing


def plan_files(linked: LinkedRegistry) -> list[PlannedFile]:
    """Every output file of the registry, in a stable order."""
    planned: list[PlannedFile] = []
    for series in sorted(linked.series.values(), key=lambda s: str(s.id)):
        planned.extend(_series_files(linked, series))
    if any(f.template == LOADER_TEMPLATE for f in planned):
        planned.append(plan_loader_runtime())
    if any(f.template == TRAINING_TEMPLATE for f in planned):
        planned.append(plan_training_runtime())
    planned.append(_upstream_file(linked))
    return sorted(planned, key=lambda f: f.path)


def _upstream_file(linked: LinkedRegistry) -> PlannedFile:
    """The registry in the upstream MIR database format (what ``mirc export-mir`` writes)."""
    text = database_text(export_database(linked))
    return PlannedFile(UPSTREAM_FILE, "mir.json.j2", {"text": text}, "")


def _series_files(linked: LinkedRegistry, series: Series) -> Iterator[PlannedFile]:
    if series.kind == "ops":
        return
    plans = {v.id: plan_variant(linked, v) for _, v in sorted(series.variants.items())}
    for plan in plans.values():
        yield plan_params_file(plan, series.path)
    loader = plan_loader(linked, series)
    if loader is not None:
        yield loader
    yield from plan_training_files(linked, series, plans)


def _render_all(
    planned: list[PlannedFile],
    out_dir: Path,
    manifest: dict[str, object],
    templates: Path,
    result: BuildResult,
    tree: StagedTree | None,
) -> tuple[dict[str, bytes], dict[str, str]] | None:
    """Render what changed, reuse the rest, each file written into ``tree`` (when building) as
    it is ready; None when a template or the lint failed (reported).

    The Python files come first: ruff lints the fresh ones in its own processes (in ``tree``'s
    folder, or a copy of them for ``--check``) while the rest renders, and its verdict is in
    before ``tree`` can be swapped in."""
    renderer = _Renderer(out_dir, manifest, templates, tree)
    try:
        for item in planned:
            if item.path.endswith(".py"):
                renderer.add(item)
        fresh = {p: renderer.files[p] for p in renderer.fresh}
        if tree is not None:
            tree.flush()  # ruff reads them from there
        with _Lint(fresh, None if tree is None else tree.folder) as lint:
            for item in planned:
                if not item.path.endswith(".py"):
                    renderer.add(item)
            problems = lint.verdict()
    except RenderError as exc:
        result.diagnostics.append(Diagnostic.error("build-render", str(exc)))
        return None
    result.rendered = len(renderer.fresh)
    if problems:
        result.diagnostics.append(Diagnostic.error("build-lint", problems))
        return None
    return renderer.files, renderer.keys


class _Renderer:
    """Each planned file's bytes and render key: the file on disk when the manifest says it was
    rendered from the same template and values, else rendered afresh (listed in ``fresh``);
    each also written into ``tree`` when there is one."""

    def __init__(
        self, out_dir: Path, manifest: dict[str, object], templates: Path, tree: StagedTree | None
    ) -> None:
        self.out_dir, self.templates, self.tree = out_dir, templates, tree
        previous = manifest.get("files", {})
        self.previous = previous if isinstance(previous, dict) else {}
        self.digests = {p.name: _digest(p.read_bytes()) for p in _template_files(templates)}
        self.files: dict[str, bytes] = {}
        self.keys: dict[str, str] = {}
        self.fresh: list[str] = []

    def add(self, item: PlannedFile) -> None:
        key = self.keys[item.path] = _render_key(item, self.digests)
        data = _reuse(self.out_dir, item.path, self.previous.get(item.path), key)
        if data is None:
            try:
                data = render(item.template, item.context, self.templates).encode("utf-8")
            except RenderError as exc:
                raise RenderError(f"spec/{item.source}: {exc}") from exc
            self.fresh.append(item.path)
        self.files[item.path] = data
        if self.tree is not None:
            self.tree.write(item.path, data)


# Plan contexts are trees of plain data: the encoder need not look for cycles.
_CONTEXT_TEXT = json.JSONEncoder(sort_keys=True, check_circular=False, separators=(",", ":")).encode


def _render_key(item: PlannedFile, template_digests: dict[str, str]) -> str:
    context = _CONTEXT_TEXT(item.context)
    name = Path(item.template).name
    return _digest(f"{item.template}\0{template_digests.get(name, '')}\0{context}".encode())


def _reuse(out_dir: Path, rel: str, entry: object, key: str) -> bytes | None:
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    path = out_dir / rel
    if not path.is_file() or path.is_symlink():
        return None
    data = path.read_bytes()
    return data if _digest(data) == entry.get("sha256") else None


class _Lint:
    """``ruff check`` and ``ruff format --check`` over freshly rendered Python (relative path →
    bytes), started on entry in two processes of ruff's own binary, beside the build: on the
    files in ``folder`` where they are written already, else on a temporary copy."""

    def __init__(self, files: dict[str, bytes], folder: Path | None) -> None:
        self._files, self._folder = files, folder
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        self._runs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> _Lint:
        if not self._files:
            return self
        if self._folder is None:
            self._copy = tempfile.TemporaryDirectory(prefix="mirc-lint-")
            self._folder = Path(self._copy.name)
            for rel, data in self._files.items():
                (self._folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (self._folder / rel).write_bytes(data)
        config = ["--no-cache", "--quiet", "--config", str(PACKAGE_DIR / "ruff-generated.toml")]
        paths = [str(self._folder / rel) for rel in sorted(self._files)]
        for command in (["check"], ["format", "--check"]):
            self._runs.append(
                subprocess.Popen(
                    [*_ruff_command(), *command, *config, *paths],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    # one worker thread each: two run beside the build, which needs a core too
                    env={**os.environ, "RAYON_NUM_THREADS": "1"},
                )
            )
        return self

    def verdict(self) -> str:
        """What ruff found ('' when the files are clean); waits for it."""
        problems = []
        for run in self._runs:
            output, _ = run.communicate()
            if run.returncode != 0:
                problems.append(output)
        if not problems or self._folder is None:
            return ""
        text = "".join(problems).replace(str(self._folder), "generated")
        return "generated Python fails ruff:\n" + text

    def __exit__(self, *exc: object) -> None:
        for run in self._runs:
            if run.poll() is None:  # the build stopped early: ruff's verdict is not wanted
                run.kill()
            run.wait()
            if run.stdout is not None:
                run.stdout.close()
        if self._copy is not None:
            self._copy.cleanup()


def _ruff_command() -> list[str]:
    """ruff's binary, as the ``ruff`` package finds it (no Python start-up per run)."""
    try:
        from ruff import find_ruff_bin

        return [str(find_ruff_bin())]
    except (ImportError, FileNotFoundError):
        return [sys.executable, "-m", "ruff"]


def _manifest_bytes(inputs: str, files: dict[str, bytes], keys: dict[str, str]) -> bytes:
    entries = {p: {"key": keys[p], "sha256": _digest(files[p])} for p in sorted(keys)}
    text = jsontext.dumps({"inputs": inputs, "files": entries}, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def _read_manifest(out_dir: Path) -> dict[str, object]:
    try:
        value = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _intact(out_dir: Path, manifest: dict[str, object]) -> bool:
    """Whether every output the manifest lists is on disk with the recorded digest, and no other."""
    entries = manifest.get("files")
    if not isinstance(entries, dict):
        return False
    on_disk = read_tree(out_dir)
    on_disk.pop(MANIFEST, None)
    if set(on_disk) != set(entries):
        return False
    return all(_digest(on_disk[p]) == e.get("sha256") for p, e in entries.items())


def inputs_digest(spec_dir: Path, templates: Path) -> str:
    """One digest of everything an output can depend on."""
    digest = hashlib.sha256()
    sources = [p for p, _ in discover(spec_dir)]
    schema = spec_dir / "schema"
    sources += sorted(schema.glob("*.json")) if schema.is_dir() else []
    sources += _template_files(templates)
    sources += sorted(PACKAGE_DIR.rglob("*.py")) + sorted(PACKAGE_DIR.rglob("*.lark"))
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _template_files(templates: Path) -> list[Path]:
    return sorted(p for p in templates.rglob("*") if p.is_file())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _diff(existing: dict[str, bytes], files: dict[str, bytes], changed: Iterable[str]) -> str:
    lines: list[str] = []
    for path in changed:
        old = existing.get(path, b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = files.get(path, b"").decode("utf-8", "replace").splitlines(keepends=True)
        lines.extend(difflib.unified_diff(old, new, f"generated/{path}", f"generated/{path} (new)"))
        if len(lines) > 200:
            lines.append("… (diff cut at 200 lines)\n")
            break
    return "".join(lines)
