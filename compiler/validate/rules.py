"""Rules a schema cannot express: ids agree with paths, names are safe, architectures exist.

Each rule takes a loaded spec and returns diagnostics; none of them stops at the first problem.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from typing import Any

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mir import MirId, parse_mir
from compiler.load import SpecFile
from compiler.taxonomy import Taxonomy
from compiler.validate.schema import shift_into
from compiler.yamlfile import NodePath

# Names that are devices, not files, on Windows (with or without an extension).
WINDOWS_DEVICE_NAMES = re.compile(r"(con|prn|aux|nul|com[0-9]|lpt[0-9])(-.*)?")
NAME_PART = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_NAME = 100

# Which domains each folder may hold.
FOLDER_DOMAINS = {"series": ("dev", "model", "info"), "ops": ("ops",)}


def mir_at(spec: SpecFile, path: NodePath) -> MirId:
    """Parse the MIR id written at ``path``, errors positioned inside the YAML value."""
    text = spec.document.value
    for part in path:
        text = text[part]
    span = spec.document.span(path)
    try:
        return parse_mir(str(text), spec.document.file)
    except MircError as exc:
        raise MircError([shift_into(d, span) for d in exc.diagnostics]) from None


def check_name(name: str, what: str, span: Span) -> list[Diagnostic]:
    """A name that becomes part of a path: grammar-limited, capped, never a device name."""
    if not NAME_PART.fullmatch(name) or len(name) > MAX_NAME:
        message = f"{what} {name!r} must be lowercase letters and digits joined by single hyphens"
        return [Diagnostic.error("spec-name", message, span)]
    if WINDOWS_DEVICE_NAMES.fullmatch(name):
        message = f"{what} {name!r} is a reserved device name on Windows"
        return [Diagnostic.error("spec-name", message, span)]
    return []


def check_series_path(spec: SpecFile, mir: MirId, taxonomy: Taxonomy) -> list[Diagnostic]:
    """``models/<arch>/<series>.yaml`` (or ``ops/…``) must agree with the id inside the file."""
    span = spec.document.span(("id",))
    problems = list(taxonomy.check(mir, span))
    folder = spec.rel.split("/")[0]
    domains = FOLDER_DOMAINS[spec.expected_kind]
    if mir.domain not in domains:
        allowed = " or ".join(domains)
        problems.append(
            Diagnostic.error(
                "spec-domain", f"{folder}/ holds {allowed} ids, not {mir.domain} ({mir})", span
            )
        )
    if mir.compat is not None or mir.modifier is not None:
        message = f"a series id has no compatibility or modifier: use {mir.series_id}"
        problems.append(Diagnostic.error("spec-id", message, span))
    canonical = taxonomy.canonical_arch(mir.arch)
    if canonical not in (None, mir.arch):
        message = f"architecture {mir.arch!r} is an alias; write the canonical {canonical!r}"
        problems.append(Diagnostic.error("spec-arch-alias", message, span))
    expected = f"{folder}/{mir.arch}/{mir.series}.yaml"
    if spec.rel != expected:
        message = f"file path {spec.rel} does not agree with id {mir}; expected {expected}"
        problems.append(Diagnostic.error("spec-path", message, span))
    problems.extend(check_name(mir.series, "series", span))
    return problems


def check_target_path(spec: SpecFile, target_id: str) -> list[Diagnostic]:
    span = spec.document.span(("id",))
    problems = check_name(target_id, "target id", span)
    expected = f"targets/{target_id}.yaml"
    if spec.rel != expected:
        message = f"file path {spec.rel} does not agree with id {target_id!r}; expected {expected}"
        problems.append(Diagnostic.error("spec-path", message, span))
    return problems


def check_classes_exist(
    spec: SpecFile, backends: Iterable[tuple[NodePath, str, str]]
) -> list[Diagnostic]:
    """``--deep``: each diffusers/transformers name a backend gives exists when imported.

    A lowercase name is a function, or a pipeline method such as diffusers'
    ``load_lora_weights`` (the upstream database writes those where a class would stand).
    """
    problems = []
    for path, package, name in backends:
        if package not in ("diffusers", "transformers"):
            continue
        module = _quiet_import(package)
        if not _provides(module, name):
            kind = "class" if name[:1].isupper() else "function or pipeline method"
            message = f"{package} has no {kind} {name!r} (installed {module.__version__})"
            span = spec.document.span((*path, "class"))
            problems.append(Diagnostic.error("spec-deep-class", message, span))
    return problems


def _quiet_import(package: str) -> Any:
    """Import diffusers/transformers without their warnings about optional backends."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    return importlib.import_module(package)


def _provides(module: Any, name: str) -> bool:
    try:
        if getattr(module, name, None) is not None:
            return True
    except Exception:  # lazy modules may fail to import an optional backend
        return False
    if module.__name__ != "diffusers" or not name[:1].islower():
        return False
    loaders = importlib.import_module("diffusers.loaders")
    mixins = (getattr(loaders, n, None) for n in dir(loaders) if n.endswith("Mixin"))
    return any(hasattr(mixin, name) for mixin in mixins)
