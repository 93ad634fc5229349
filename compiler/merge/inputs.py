"""A recipe's input models: found on disk, their headers read, and checked against each other.

Everything here reads headers only. A ``model`` path is looked up in ``--model-dir`` first, then
beside the recipe (with ``.safetensors`` added when it has no suffix, as sd-mecha does); a MIR
id names a file in ``--model-dir`` whose stem is the id's last name. Inputs of different
architectures are refused naming both files and the first key or shape that differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha.ast import Model, Recipe
from compiler.tensorfile import SafetensorsHeader, read_header

MISSING_POLICIES = ("error", "fallback")


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One ``model`` line: its expression index, the file it names and that file's header."""

    index: int
    name: str
    header: SafetensorsHeader
    mir: str | None = None


def resolve_inputs(recipe: Recipe, recipe_dir: Path, model_dir: Path | None) -> list[ModelInput]:
    """The recipe's models, each found and its header read; problems raise MircError."""
    found: list[ModelInput] = []
    problems: list[Diagnostic] = []
    for index, expression in enumerate(recipe.expressions):
        if not isinstance(expression, Model):
            continue
        try:
            found.append(_resolve(index, expression, recipe_dir, model_dir))
        except MircError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise MircError(problems)
    return found


def _resolve(index: int, model: Model, recipe_dir: Path, model_dir: Path | None) -> ModelInput:
    name = model.path.value
    mir = name if name.startswith("mir:") else None
    path = _mir_file(name, model_dir) if mir else _model_file(name, recipe_dir, model_dir)
    if path is None:
        where = f" in {model_dir}" if model_dir is not None else ""
        hint = "give --model-dir DIR holding NAME.safetensors" if mir else "check the path"
        message = f"cannot find the model '{name}'{where}"
        raise MircError([Diagnostic.error("merge-input", message, model.path.span, (hint,))])
    return ModelInput(index, name, read_header(path), mir)


def _model_file(name: str, recipe_dir: Path, model_dir: Path | None) -> Path | None:
    bases = [model_dir, recipe_dir] if model_dir is not None else [recipe_dir]
    for base in bases:
        for candidate in (base / name, base / f"{name}.safetensors"):
            if candidate.is_file():
                return candidate
    return None


def _mir_file(mir: str, model_dir: Path | None) -> Path | None:
    if model_dir is None:
        return None
    stem = mir.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    candidate = model_dir / f"{stem}.safetensors"
    return candidate if candidate.is_file() else None


def check_compatible(inputs: Sequence[ModelInput], missing: str = "error") -> list[Diagnostic]:
    """Each input against the first: same shapes for shared keys, and (unless ``missing`` is
    ``fallback``) the same keys."""
    problems: list[Diagnostic] = []
    first = inputs[0].header if inputs else None
    for other in inputs[1:]:
        assert first is not None
        reason = _difference(first, other.header, missing)
        if reason is not None:
            message = f"{first.path} and {other.header.path} are not compatible: {reason}"
            notes = ("models of different architectures cannot be merged key by key",)
            if missing == "error" and "has no key" in reason:
                notes = ("--missing fallback takes a missing key from the model that has it",)
            problems.append(
                Diagnostic.error("merge-incompatible", message, Span(first.path), notes)
            )
    return problems


def _difference(a: SafetensorsHeader, b: SafetensorsHeader, missing: str) -> str | None:
    for key in sorted(a.tensors.keys() & b.tensors.keys()):
        shape_a, shape_b = a.tensors[key].shape, b.tensors[key].shape
        if shape_a != shape_b:
            return (
                f"'{key}' has shape {list(shape_a)} in the first and {list(shape_b)} in the second"
            )
    if not a.tensors.keys() & b.tensors.keys() and len(a.tensors) and len(b.tensors):
        return f"they share no key (first: '{min(a.tensors)}', second: '{min(b.tensors)}')"
    if missing == "fallback":
        return None
    only_a = sorted(a.tensors.keys() - b.tensors.keys())
    only_b = sorted(b.tensors.keys() - a.tensors.keys())
    if only_a:
        return f"the second has no key '{only_a[0]}' ({len(only_a)} keys missing)"
    if only_b:
        return f"the first has no key '{only_b[0]}' ({len(only_b)} keys missing)"
    return None
