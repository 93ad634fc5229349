"""JSON Schema validation of spec documents, with errors pointing at the YAML node.

The schemas are the files in ``spec/schema/`` (draft 2020-12), cross-referenced by their
relative ``$id``. Errors lead with ``jsonschema.exceptions.best_match`` and list the rest; each
is mapped from its JSON path to the line and column of the offending node (for an unknown field,
of its key).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance
from referencing import Registry, Resource

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mir import parse_mir
from compiler.yamlfile import NodePath, YamlDocument

SCHEMA_FILES = {
    "series": "series.schema.json",
    "ops": "ops.schema.json",
    "target": "target.schema.json",
    "taxonomy": "taxonomy.schema.json",
}


@functools.cache
def validators(schema_dir: Path) -> dict[str, Draft202012Validator]:
    """A validator per spec kind, sharing one registry of every schema in ``schema_dir``."""
    schemas = {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(schema_dir.glob("*.schema.json"))
    }
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return {
        kind: Draft202012Validator(schemas[name], registry=registry)
        for kind, name in SCHEMA_FILES.items()
    }


def schema_diagnostics(document: YamlDocument, validator: Draft202012Validator) -> list[Diagnostic]:
    """Every schema error of ``document``, the best match first."""
    errors = list(validator.iter_errors(document.value))
    if not errors:
        return []
    best = best_match(errors)
    ordered = [best, *sorted((e for e in errors if e is not best), key=_order)]
    return [_diagnostic(document, error) for error in ordered]


def _order(error: ValidationError) -> tuple[Any, ...]:
    return (tuple(str(p) for p in error.absolute_path), relevance(error))


def _diagnostic(document: YamlDocument, error: ValidationError) -> Diagnostic:
    path: NodePath = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unknown = next(_unexpected(error), None)
        if unknown is not None:
            where = _where(path)
            span = document.span((*path, unknown), key=True)
            message = f"unknown field {unknown!r}{where}"
            return Diagnostic.error("schema-unknown-field", message, span, _allowed(error))
    if error.validator == "propertyNames" and isinstance(error.instance, str):
        bad = error.instance
        span = document.span((*path, bad), key=True)
        message = f"invalid name {bad!r}{_where(path)}: {error.message}"
        return Diagnostic.error("schema", message, span)
    if error.validator == "pattern" and isinstance(error.instance, str):
        return _pattern_diagnostic(document, error, path)
    span = document.span(path)
    return Diagnostic.error("schema", f"{error.message}{_where(path)}", span)


def _pattern_diagnostic(
    document: YamlDocument, error: ValidationError, path: NodePath
) -> Diagnostic:
    """A pattern mismatch worded by what the pattern means, not by the regular expression.

    MIR ids are re-parsed with the MIR grammar so the message and column come from it.
    """
    text = str(error.instance)
    span = document.span(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if schema.get("$comment") == "mir-id":
        try:
            parse_mir(text, document.file)
        except MircError as exc:
            return shift_into(exc.diagnostics[0], span)
    meaning = schema.get("description", "")
    message = f"{text!r} is not valid{_where(path)}"
    return Diagnostic.error("schema", message, span, (meaning,) if meaning else ())


def _unexpected(error: ValidationError) -> Iterator[str]:
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    return (key for key in instance if key not in known)


def _allowed(error: ValidationError) -> tuple[str, ...]:
    known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    if not known:
        return ()
    return ("allowed fields: " + ", ".join(sorted(known)),)


def _where(path: NodePath) -> str:
    if not path:
        return ""
    return " (at " + ".".join(str(p) for p in path) + ")"


def shift_into(diagnostic: Diagnostic, node: Span) -> Diagnostic:
    """Move a diagnostic positioned within a YAML scalar's text to where the scalar is written."""
    inner = diagnostic.span
    source = node.source_line or ""
    quoted = node.col - 1 < len(source) and source[node.col - 1] in "\"'"
    col = node.col + (inner.col - 1 if inner else 0) + (1 if quoted else 0)
    span = Span(node.file, node.line, col, node.line, None, node.source_line)
    return Diagnostic(
        diagnostic.severity, diagnostic.code, diagnostic.message, span, diagnostic.notes
    )
