"""The load stage: find the spec files of a registry folder, read them, migrate old versions.

Layout (DESIGN §4): ``taxonomy.yaml``; ``models/<arch>/<series>.yaml`` (model series);
``ops/<arch>/<series>.yaml`` (ops entries); ``targets/<id>.yaml`` (GPU targets). Every file is
read with the hardened YAML loader; files in older spec versions are migrated here, so later
stages see only the current version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.diagnostics import DiagnosticSink, MircError
from compiler.yamlfile import NodePath, YamlDocument, load_yaml_file

CURRENT_SPEC_VERSION = 1

# Which kind of spec each top-level folder holds.
FOLDER_KINDS = {"models": "series", "ops": "ops", "targets": "target"}
SPEC_SUFFIX = ".yaml"


@dataclass(frozen=True)
class SpecFile:
    """One loaded spec file: where it is and what it says (current spec version)."""

    path: Path
    rel: str  # relative to the spec folder, forward slashes
    expected_kind: str
    document: YamlDocument


def discover(spec_dir: Path) -> list[tuple[Path, str]]:
    """Spec files under ``spec_dir`` with the kind their folder implies, in sorted order."""
    found: list[tuple[Path, str]] = []
    taxonomy = spec_dir / "taxonomy.yaml"
    if taxonomy.is_file():
        found.append((taxonomy, "taxonomy"))
    for folder, kind in FOLDER_KINDS.items():
        root = spec_dir / folder
        if root.is_dir():
            found.extend((p, kind) for p in sorted(root.rglob(f"*{SPEC_SUFFIX}")) if p.is_file())
    return found


def discovered(spec_dir: Path) -> list[str]:
    """The relative paths of every spec file under ``spec_dir``."""
    return [path.relative_to(spec_dir).as_posix() for path, _ in discover(spec_dir)]


def load_specs(spec_dir: Path, sink: DiagnosticSink, fallback_dir: Path) -> list[SpecFile]:
    """Load every spec file; rejected files add diagnostics and are left out.

    A registry without its own ``taxonomy.yaml`` uses the one in ``fallback_dir`` (the registry
    mirc ships), so that a spec repository holds only its models, ops and targets.
    """
    if not spec_dir.is_dir():
        sink.error("spec-missing", f"{spec_dir}: no such registry folder")
        return []
    specs = []
    found = discover(spec_dir)
    if not any(kind == "taxonomy" for _, kind in found):
        found.insert(0, (fallback_dir / "taxonomy.yaml", "taxonomy"))
    for path, kind in found:
        base = spec_dir if path.is_relative_to(spec_dir) else fallback_dir
        rel = path.relative_to(base).as_posix()
        display = _display(path)
        try:
            document = migrate(load_yaml_file(path, display))
        except MircError as exc:
            sink.extend(exc.diagnostics)
            continue
        specs.append(SpecFile(path, rel, kind, document))
    return specs


def _display(path: Path) -> str:
    """The path as users should read it: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def migrate(document: YamlDocument) -> YamlDocument:
    """Bring a spec document to the current spec version, one step at a time."""
    value = document.value
    if not isinstance(value, dict) or not isinstance(value.get("spec_version", 0), int):
        return document  # the schema reports what is wrong with it
    version = value.get("spec_version", 0)
    while version in MIGRATIONS and version < CURRENT_SPEC_VERSION:
        document = MIGRATIONS[version](document)
        version += 1
    return document


def _v0_to_v1(document: YamlDocument) -> YamlDocument:
    """Version 0 kept ``file_256``/``layer_256`` on the variant, as the upstream database does;
    version 1 groups them under ``hashes``."""
    value = copy.deepcopy(document.value)
    moves: list[tuple[NodePath, NodePath]] = []
    variants = value.get("variants")
    for compat, variant in (variants or {}).items() if isinstance(variants, dict) else ():
        if not isinstance(variant, dict):
            continue
        for key in ("file_256", "layer_256"):
            if key in variant:
                variant.setdefault("hashes", {})[key] = variant.pop(key)
                moves.append((("variants", compat, key), ("variants", compat, "hashes", key)))
    value["spec_version"] = 1
    return _with_value(document, value, moves)


def _with_value(
    document: YamlDocument, value: Any, moves: list[tuple[NodePath, NodePath]]
) -> YamlDocument:
    """``document`` holding ``value``, with node positions carried along the moved paths."""
    positions = dict(document.positions)
    keys = dict(document.key_positions)
    for old, new in moves:
        for table in (positions, keys):
            for path in [p for p in table if p[: len(old)] == old]:
                table[new + path[len(old) :]] = table[path]
    return YamlDocument(document.file, document.text, value, positions, keys)


MIGRATIONS: dict[int, Callable[[YamlDocument], YamlDocument]] = {0: _v0_to_v1}
