"""``mirc build``: check the registry, plan every output, render, lint and write ``generated/``.

Deterministic (sorted everything, no timestamps), atomic (see :mod:`compiler.write`) and
incremental: ``generated/manifest.json`` records a digest of every input (spec files, schemas,
templates, mirc's own source) and, per output, the digest of what it was rendered from. When no
input changed and the outputs are intact nothing is read, rendered or written; otherwise only
outputs whose template or values changed are rendered again.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic
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
from compiler.write import WriteError, read_tree, recover, write_tree

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
    rendered = _render_all(planned, out_dir, manifest, templates, result)
    if rendered is None:
        return result
    files, keys = rendered
    result.files = len(files)
    existing = read_tree(out_dir)
    existing.pop(MANIFEST, None)
    result.changed = sorted(
        p for p in set(files) | set(existing) if files.get(p) != existing.get(p)
    )
    if check:
        result.diff = _diff(existing, files, result.changed)
        return result
    files[MANIFEST] = _manifest_bytes(inputs, files, keys)
    if result.changed or manifest.get("inputs") != inputs:
        try:
            write_tree(out_dir, files)
        except (OSError, WriteError) as exc:
            result.diagnostics.append(Diagnostic.error("build-write", f"{out_dir}: {exc}"))
    return result


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
) -> tuple[dict[str, bytes], dict[str, str]] | None:
    """Render what changed, reuse the rest; None when a template failed (reported)."""
    template_digests = {p.name: _digest(p.read_bytes()) for p in _template_files(templates)}
    previous = manifest.get("files", {})
    assert isinstance(previous, dict)
    files: dict[str, bytes] = {}
    keys: dict[str, str] = {}
    fresh: list[str] = []
    for item in planned:
        key = _render_key(item, template_digests)
        keys[item.path] = key
        reused = _reuse(out_dir, item.path, previous.get(item.path), key)
        if reused is not None:
            files[item.path] = reused
            continue
        try:
            files[item.path] = render(item.template, item.context, templates).encode("utf-8")
        except RenderError as exc:
            result.diagnostics.append(
                Diagnostic.error("build-render", f"spec/{item.source}: {exc}")
            )
            return None
        fresh.append(item.path)
    result.rendered = len(fresh)
    lint = _lint([p for p in fresh if p.endswith(".py")], files)
    if lint:
        result.diagnostics.append(Diagnostic.error("build-lint", lint))
        return None
    return files, keys


def _render_key(item: PlannedFile, template_digests: dict[str, str]) -> str:
    context = json.dumps(item.context, sort_keys=True, ensure_ascii=True)
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


def _lint(paths: list[str], files: dict[str, bytes]) -> str:
    """ruff check and ruff format --check over the generated Python; '' when clean."""
    if not paths:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        for rel in paths:
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[rel])
        config = ["--config", str(PACKAGE_DIR / "ruff-generated.toml")]
        for command in (["check", "--quiet"], ["format", "--check", "--quiet"]):
            done = subprocess.run(
                [sys.executable, "-m", "ruff", *command, *config, tmp],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                return "generated Python fails ruff:\n" + (done.stdout + done.stderr).replace(
                    tmp, "generated"
                )
    return ""


def _manifest_bytes(inputs: str, files: dict[str, bytes], keys: dict[str, str]) -> bytes:
    entries = {p: {"key": keys[p], "sha256": _digest(files[p])} for p in sorted(keys)}
    text = json.dumps({"inputs": inputs, "files": entries}, indent=2, sort_keys=True)
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
