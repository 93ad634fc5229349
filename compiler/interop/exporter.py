"""``mirc export-mir``: the registry → the upstream ``mir.json`` format.

The registry is checked first (``mirc check``); a registry with errors exports nothing. Each
series becomes one key, its variants the compatibility entries, written back as upstream wrote
them where import kept the original (``upstream.key``, ``upstream.compat``, backend ``extra``)
and in their canonical form otherwise (``base`` → ``*``; references as dotted ids).

Only what the upstream format has a place for is exported: a variant's ``repo``, its
``backends`` (as ``pkg``: package → class or {class: args}, ``generation``, ``precision``,
``scheduler``) and its ``hashes`` (``file_256``, ``layer_256``). Curated fields (name,
description, links, components, base model, objective, parameters, dimensions, fingerprints,
training, license, dtype) have no place there and are left out.

Formatting follows upstream's file: JSON indented by four spaces, ASCII only; series keys are
sorted so that the output does not depend on the order of spec files; a final newline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler import jsontext
from compiler.diagnostics import Diagnostic, MircError
from compiler.interop.files import write_files_atomic
from compiler.interop.references import STAR
from compiler.ir import BASE, Backend, Reference, Series, Variant
from compiler.link import LinkedRegistry, variant_key
from compiler.registry import check_registry

UpstreamDatabase = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ExportResult:
    output: Path
    series: int
    entries: int
    diagnostics: tuple[Diagnostic, ...]  # warnings of the registry check

    def to_json(self) -> dict[str, object]:
        return {
            "output": str(self.output),
            "series": self.series,
            "entries": self.entries,
            "ok": True,
        }


def export_mir(spec_dir: Path, output: Path) -> ExportResult:
    """Check the registry in ``spec_dir`` and write it to ``output`` in the upstream format;
    a registry with errors raises :class:`MircError` and writes nothing."""
    result = check_registry(spec_dir)
    if not result.ok or result.linked is None:
        raise MircError(result.diagnostics)
    database = export_database(result.linked)
    write_files_atomic({output: database_text(database).encode("utf-8")})
    entries = sum(len(body) for body in database.values())
    return ExportResult(output, len(database), entries, result.diagnostics)


def database_text(database: Mapping[str, Any]) -> str:
    """The JSON text of a database, formatted as upstream formats it."""
    return jsontext.dumps(database, indent=4) + "\n"


def export_database(linked: LinkedRegistry) -> UpstreamDatabase:
    """The linked registry as an upstream database (series keys sorted)."""
    database: UpstreamDatabase = {}
    for series in linked.series.values():
        key = upstream_key(series)
        if key in database:
            raise _collision(f"two series export as {key!r}", series)
        entries: dict[str, dict[str, Any]] = {}
        for variant in series.variants.values():
            compat = upstream_compat(variant)
            if compat in entries:
                raise _collision(f"two variants of {key} export as {compat!r}", series)
            entries[compat] = _entry(variant, linked)
        database[key] = entries
    return dict(sorted(database.items()))


def _collision(message: str, series: Series) -> MircError:
    return MircError([Diagnostic.error("export-collision", message, series.span)])


def upstream_key(series: Series) -> str:
    """The key a series had upstream, else its MIR id without prefix."""
    for variant in series.variants.values():
        if "key" in variant.upstream:
            return variant.upstream["key"]
    mir = series.id
    return f"{mir.domain}.{mir.arch}.{mir.series}"


def upstream_compat(variant: Variant) -> str:
    """The compatibility key a variant had upstream, else its name (``base`` is ``*``)."""
    if "compat" in variant.upstream:
        return variant.upstream["compat"]
    return STAR if variant.compat == BASE else variant.compat


def _entry(variant: Variant, linked: LinkedRegistry) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if variant.repo is not None:
        entry["repo"] = variant.repo
    if variant.backends:
        pkg = (_pkg_entry(backend, linked) for backend in variant.backends)
        entry["pkg"] = {str(position): body for position, body in enumerate(pkg)}
    if variant.file_hashes:
        files = variant.file_hashes
        if any(file.generation for file in files):
            entry["file_256"] = {file.sha256: dict(file.generation) for file in files}
        else:
            entry["file_256"] = [file.sha256 for file in files]
    if variant.layer_hashes:
        entry["layer_256"] = list(variant.layer_hashes)
    return entry


def _pkg_entry(backend: Backend, linked: LinkedRegistry) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if backend.package is not None:
        target = backend.class_name or ""
        if backend.args is not None:
            body[backend.package] = {target: dict(backend.args)}
        else:
            body[backend.package] = target
    body.update(backend.extra)
    if backend.precision is not None:
        body["precision"] = reference_text(backend.precision, linked)
    if backend.generation:
        body["generation"] = dict(backend.generation)
    if backend.scheduler is not None:
        scheduler = reference_text(backend.scheduler, linked)
        args = backend.scheduler_args
        body["scheduler"] = scheduler if args is None else {scheduler: dict(args)}
    return body


def reference_text(reference: Reference, linked: LinkedRegistry) -> str:
    """A reference as upstream writes one: ``KEY.COMPAT`` with dots (``KEY`` for base)."""
    target = linked.variants[variant_key(reference.target, linked.taxonomy)]
    key = upstream_key(linked.series_of(target))
    return key if target.compat == BASE else f"{key}.{target.compat}"
