"""``mirc import-mir``: the upstream database → spec files, merged with what is already there.

The import is all or nothing: mir.json is read strictly, every entry is converted
(:mod:`compiler.interop.upstream`), every file to write is planned, the planned registry is
checked in a staging copy of the spec folder (schema, paths, links — what ``mirc check`` does),
and only then are files written, each atomically. Rejected input writes nothing.

Merge contract: import owns the upstream-derived fields of a variant (:data:`OWNED`); it sets
them from upstream where upstream has them (in a variant written by hand, its own backends stay
first and win, see :func:`merge_backends`), adds variants and files that do not exist yet, and
keeps every other field of an existing file as it is. A file whose values would not change is
not rewritten, so a second import of the same database changes nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.interop.files import check_write_path, write_files_atomic
from compiler.interop.jsonfile import MAX_BYTES, JsonDocument, load_json
from compiler.interop.references import name_index
from compiler.interop.specwrite import schema_ref, write_spec
from compiler.interop.table import Change, rule_counts
from compiler.interop.upstream import Converter, ImportedSeries
from compiler.lang.mir import parse_mir
from compiler.load import migrate
from compiler.registry import check_registry
from compiler.taxonomy import Taxonomy, load_taxonomy
from compiler.yamlfile import YamlDocument, load_yaml_file

OWNED = ("repo", "backends", "hashes", "upstream")


@dataclass(frozen=True)
class ImportResult:
    """What an import did: files by state, every change by rule, and its warnings."""

    source: str
    spec_dir: Path
    entries: int
    compat_entries: int
    new: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    changes: tuple[Change, ...]
    diagnostics: tuple[Diagnostic, ...]

    def rule_counts(self) -> dict[str, int]:
        return rule_counts(self.changes)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "spec_dir": str(self.spec_dir),
            "entries": self.entries,
            "compat_entries": self.compat_entries,
            "files": {
                "new": list(self.new),
                "updated": list(self.updated),
                "unchanged": list(self.unchanged),
            },
            "rules": self.rule_counts(),
            "changes": [change.to_json() for change in self.changes],
            "ok": True,
        }


@dataclass(frozen=True)
class _Plan:
    """The text of each file to write, and the state of every imported file."""

    writes: dict[str, str]
    states: dict[str, str]  # rel → "new", "updated" or "unchanged"


def import_mir(mir_json: Path, spec_dir: Path) -> ImportResult:
    """Import ``mir_json`` into ``spec_dir``; rejected input raises :class:`MircError` and
    writes nothing."""
    try:
        return _import(mir_json, spec_dir)
    except OSError as exc:  # the folder cannot be read or staged: say which, as a rejection
        where = exc.filename or spec_dir
        message = f"cannot import into {spec_dir}: {where}: {exc.strerror or exc}"
        raise MircError([Diagnostic.error("import", message, Span(str(spec_dir)))]) from None


def _import(mir_json: Path, spec_dir: Path) -> ImportResult:
    source = read_database(mir_json)
    database: dict[str, Any] = source.value
    taxonomy = _taxonomy(spec_dir)
    converter = Converter(source, taxonomy, name_index(database, taxonomy))
    imported = [s for s in (converter.convert(k, v) for k, v in database.items()) if s]
    converter.sink.extend(_path_collisions(imported, source))
    converter.sink.raise_if_errors()
    plan = _plan(spec_dir, imported)
    if plan.writes:
        _check_staged(spec_dir, plan.writes, imported, source)
        files = {spec_dir / rel: text.encode("utf-8") for rel, text in sorted(plan.writes.items())}
        write_files_atomic(files)
    return ImportResult(
        source=source.file,
        spec_dir=spec_dir,
        entries=len(database),
        compat_entries=sum(len(body) for body in database.values()),
        new=_with_state(plan, "new"),
        updated=_with_state(plan, "updated"),
        unchanged=_with_state(plan, "unchanged"),
        changes=tuple(converter.changes),
        diagnostics=tuple(converter.sink),
    )


def read_database(path: Path) -> JsonDocument:
    """mir.json read strictly; it must be an object of MIR keys."""
    display = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _reject(display, f"file is {size} bytes; at most {MAX_BYTES} allowed")
        data = path.read_bytes()
    except OSError as exc:
        raise _reject(display, f"cannot read: {exc.strerror}") from None
    source = load_json(data, display)
    if not isinstance(source.value, dict):
        kind = type(source.value).__name__
        message = f"the MIR database is a JSON object of MIR keys, not a {kind}"
        raise MircError([Diagnostic.error("import", message, source.span(()))])
    return source


def _path_collisions(
    imported: Iterable[ImportedSeries], source: JsonDocument
) -> Iterable[Diagnostic]:
    """Two upstream keys whose names normalise to one spec file cannot both be imported."""
    first: dict[str, str] = {}
    for series in imported:
        other = first.setdefault(series.rel, series.key)
        if other != series.key:
            message = f"{other!r} and {series.key!r} both become {series.rel}"
            yield Diagnostic.error(
                "import-collision", message, source.span((series.key,), key=True)
            )


def _reject(file: str, message: str) -> MircError:
    return MircError([Diagnostic.error("import", message, Span(file))])


def _taxonomy(spec_dir: Path) -> Taxonomy:
    own = (spec_dir / "taxonomy.yaml").is_file()
    return load_taxonomy(spec_dir if own else None)


def _with_state(plan: _Plan, state: str) -> tuple[str, ...]:
    return tuple(sorted(rel for rel, s in plan.states.items() if s == state))


def _plan(spec_dir: Path, imported: Iterable[ImportedSeries]) -> _Plan:
    writes: dict[str, str] = {}
    states: dict[str, str] = {}
    for series in imported:
        check_write_path(spec_dir, series.rel)
        path = spec_dir / series.rel
        ref = schema_ref(series.rel, series.kind)
        if not path.exists():
            writes[series.rel] = write_spec(series.document(), ref)
            states[series.rel] = "new"
            continue
        existing = migrate(_load_existing(path)).value
        _check_same_series(path, existing, series)
        merged = merge_series(existing, series)
        if _canonical(merged) == _canonical(existing):
            states[series.rel] = "unchanged"
        else:
            writes[series.rel] = write_spec(merged, ref)
            states[series.rel] = "updated"
    return _Plan(writes, states)


def _load_existing(path: Path) -> YamlDocument:
    try:
        return load_yaml_file(path)
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        raise MircError([Diagnostic.error("import", message, Span(str(path)))]) from None


def _canonical(value: Any) -> str:
    """A text that tells apart what ``==`` does not (``1``, ``1.0`` and ``True``)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def _check_same_series(path: Path, existing: Any, series: ImportedSeries) -> None:
    kind = existing.get("kind") if isinstance(existing, dict) else None
    same = kind == series.kind and isinstance(existing.get("variants", {}), dict)
    if same:
        try:
            same = parse_mir(str(existing.get("id")), str(path)).series_id == parse_mir(
                series.id, str(path)
            )
        except MircError:
            same = False
    if not same:
        message = f"{series.key} belongs in this file, which holds something else; not merged"
        notes = (f"expected a {series.kind} spec with id {series.id}",)
        raise MircError([Diagnostic.error("import-merge", message, Span(str(path)), notes)])


def merge_series(existing: Mapping[str, Any], series: ImportedSeries) -> dict[str, Any]:
    """``existing`` with import's fields (:data:`OWNED`) set from ``series``, and the variants
    it lacks added; every other field is kept as it is."""
    merged = json.loads(json.dumps(existing))
    variants = merged.setdefault("variants", {})
    for name, fields in series.variants.items():
        target = variants.setdefault(name, {})
        curated = is_curated(target)
        for field in OWNED:
            if field == "backends" and field in fields and curated:
                target[field] = merge_backends(target.get(field, []), fields[field])
            elif field in fields:
                target[field] = fields[field]
    return dict(merged)


def is_curated(variant: Mapping[str, Any]) -> bool:
    """A variant someone wrote by hand: it has fields no import produces."""
    return any(field not in OWNED for field in variant)


def merge_backends(curated: list[dict[str, Any]], upstream: list[dict[str, Any]]) -> list[Any]:
    """A curated variant's backends stay first and win where they say something (upstream's
    entries are sometimes wrong for the family, e.g. an inpainting pipeline as the default);
    upstream fills what a backend of the same package and class leaves out, and its other
    backends follow."""
    merged = [dict(b) for b in curated]
    index = {(b.get("package"), b.get("class")): b for b in merged}
    for backend in upstream:
        mine = index.get((backend.get("package"), backend.get("class")))
        if mine is None:
            merged.append(backend)
            continue
        for key, value in backend.items():
            mine.setdefault(key, value)
    return merged


def _check_staged(
    spec_dir: Path,
    writes: Mapping[str, str],
    imported: Iterable[ImportedSeries],
    source: JsonDocument,
) -> None:
    """Run ``mirc check`` on a copy of the spec folder with the planned files in it; errors in
    those files reject the import."""
    keys = {series.rel: series.key for series in imported}
    with tempfile.TemporaryDirectory(prefix="mirc-import-") as temporary:
        staged = Path(temporary) / "spec"
        if spec_dir.is_dir():
            shutil.copytree(spec_dir, staged, symlinks=True)
        for rel, text in writes.items():
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            (staged / rel).write_text(text, encoding="utf-8")
        result = check_registry(staged)
        errors = []
        for diagnostic in result.diagnostics:
            where = _staged_rel(diagnostic, staged)
            if diagnostic.is_error and where is not None and where in writes:
                origin = source.span((keys[where],), key=True)
                errors.append(_unstage(diagnostic, spec_dir / where, origin))
    if errors:
        raise MircError(errors)


def _staged_rel(diagnostic: Diagnostic, staged: Path) -> str | None:
    if diagnostic.span is None:
        return None
    try:
        return Path(diagnostic.span.file).resolve().relative_to(staged.resolve()).as_posix()
    except ValueError:
        return None


def _unstage(diagnostic: Diagnostic, path: Path, origin: Span) -> Diagnostic:
    """A problem of a planned file, reported at the upstream entry it came from."""
    assert diagnostic.span is not None
    where = replace(diagnostic.span, file=str(path)).location
    line = (diagnostic.span.source_line or "").strip()
    note = f"in {where} as import would write it: {line}"
    return replace(diagnostic, span=origin, notes=(note, *diagnostic.notes))
