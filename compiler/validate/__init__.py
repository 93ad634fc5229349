"""The validate stage: loaded spec documents → the typed registry (:mod:`compiler.ir`).

Every file is checked (schema, then the rules in :mod:`compiler.validate.rules`); a file with
errors is reported and left out of the registry, and checking goes on with the next file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jsonschema import Draft202012Validator

from compiler.diagnostics import DiagnosticSink, MircError
from compiler.ir import Registry, Series, Target
from compiler.load import SpecFile
from compiler.taxonomy import Taxonomy
from compiler.validate import rules
from compiler.validate.build import build_series, build_target
from compiler.validate.schema import schema_diagnostics, validators
from compiler.yamlfile import NodePath


def validate(
    specs: list[SpecFile],
    spec_dir: Path,
    schema_dir: Path,
    sink: DiagnosticSink,
    deep: bool = False,
) -> tuple[Taxonomy | None, Registry]:
    """Validate every loaded spec; return the taxonomy and the registry of the valid files."""
    checkers = validators(schema_dir.resolve())
    taxonomy = None
    series: list[Series] = []
    targets: list[Target] = []
    for spec in specs:
        if spec.expected_kind == "taxonomy":
            taxonomy = _taxonomy(spec, checkers, sink)
    for spec in specs:
        if spec.expected_kind == "taxonomy" or not _schema_ok(spec, checkers, sink):
            continue
        try:
            if spec.expected_kind == "target":
                targets.append(_target(spec, sink))
            elif taxonomy is not None:
                series.append(_series(spec, taxonomy, sink, deep))
        except MircError as exc:
            sink.extend(exc.diagnostics)
    return taxonomy, Registry(str(spec_dir), tuple(series), tuple(targets))


def _schema_ok(
    spec: SpecFile, checkers: Mapping[str, Draft202012Validator], sink: DiagnosticSink
) -> bool:
    value = spec.document.value
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind != spec.expected_kind:
        span = spec.document.span(("kind",) if kind is not None else ())
        folder = spec.rel.split("/")[0]
        sink.error(
            "spec-kind",
            f"files under {folder}/ are of kind {spec.expected_kind!r}, not {kind!r}",
            span,
        )
        return False
    problems = schema_diagnostics(spec.document, checkers[spec.expected_kind])
    sink.extend(problems)
    return not problems


def _taxonomy(
    spec: SpecFile, checkers: Mapping[str, Draft202012Validator], sink: DiagnosticSink
) -> Taxonomy | None:
    if not _schema_ok(spec, checkers, sink):
        return None
    return Taxonomy.from_mapping(spec.document.value)


def _series(spec: SpecFile, taxonomy: Taxonomy, sink: DiagnosticSink, deep: bool) -> Series:
    mir = rules.mir_at(spec, ("id",))
    problems = rules.check_series_path(spec, mir, taxonomy)
    for compat in spec.document.value["variants"]:
        span = spec.document.span(("variants", compat), key=True)
        problems.extend(rules.check_name(compat, "compatibility name", span))
    series = build_series(spec, mir)
    if deep:
        problems.extend(rules.check_classes_exist(spec, _backend_classes(spec)))
    if problems:
        raise MircError(problems)
    return series


def _backend_classes(spec: SpecFile) -> list[tuple[NodePath, str, str]]:
    found: list[tuple[NodePath, str, str]] = []
    for compat, variant in spec.document.value["variants"].items():
        for index, backend in enumerate(variant.get("backends", ())):
            if "class" in backend:
                path = ("variants", compat, "backends", index)
                found.append((path, backend["package"], backend["class"]))
    return found


def _target(spec: SpecFile, sink: DiagnosticSink) -> Target:
    target = build_target(spec)
    problems = rules.check_target_path(spec, target.id)
    if problems:
        raise MircError(problems)
    return target
