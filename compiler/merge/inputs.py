"""A recipe's input models: found on disk, their headers read, and checked against each other.

Everything here reads headers only. A ``model`` path is looked up in ``--model-dir`` first, then
beside the recipe (with ``.safetensors`` added when it has no suffix, as sd-mecha does); a MIR
id is found by ``locate`` (a file named after it in ``--model-dir``, else the one file there or
beside the recipe that identifies as it). Inputs of different architectures are refused naming
both files and the first key or shape that differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha.ast import Model, Recipe
from compiler.merge.locate import Identifier, MirFiles
from compiler.tensorfile import SafetensorsHeader, read_header

if TYPE_CHECKING:
    from compiler.merge.lora import LoraMap

MISSING_POLICIES = ("error", "fallback")


@dataclass(frozen=True, slots=True)
class ModelInput:
    """One ``model`` line: its expression index, the file it names and that file's header."""

    index: int
    name: str
    header: SafetensorsHeader
    mir: str | None = None
    lora: LoraMap | None = None  # a kohya LoRA, mapped onto its base (``lora.attach_loras``)


def resolve_inputs(
    recipe: Recipe,
    recipe_dir: Path,
    model_dir: Path | None,
    identify: Identifier | None = None,
    exclude: Iterable[Path] = (),
) -> list[ModelInput]:
    """The recipe's models, each found and its header read; problems raise MircError.

    ``identify`` finds MIR ids by identification; files in ``exclude`` (the output) are never
    taken for one."""
    found: list[ModelInput] = []
    problems: list[Diagnostic] = []
    mir_files = MirFiles(recipe_dir, model_dir, identify, exclude)
    for index, expression in enumerate(recipe.expressions):
        if not isinstance(expression, Model):
            continue
        try:
            found.append(_resolve(index, expression, recipe_dir, model_dir, mir_files))
        except MircError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise MircError(problems)
    return found


def _resolve(
    index: int, model: Model, recipe_dir: Path, model_dir: Path | None, mir_files: MirFiles
) -> ModelInput:
    name = model.path.value
    if name.startswith("mir:"):
        return ModelInput(index, name, mir_files.find(name, model.path.span), name)
    path = _model_file(name, recipe_dir, model_dir)
    if path is None:
        where = f" in {model_dir}" if model_dir is not None else ""
        message = f"cannot find the model '{name}'{where}"
        note = "check the path"
        raise MircError([Diagnostic.error("merge-input", message, model.path.span, (note,))])
    return ModelInput(index, name, read_header(path))


def _model_file(name: str, recipe_dir: Path, model_dir: Path | None) -> Path | None:
    bases = [model_dir, recipe_dir] if model_dir is not None else [recipe_dir]
    for base in bases:
        for candidate in (base / name, base / f"{name}.safetensors"):
            if candidate.is_file():
                return candidate
    return None


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
