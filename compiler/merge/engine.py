"""``mirc merge``: execute a Mecha recipe over safetensors files, streaming.

:func:`plan_merge` checks the recipe (before any tensor is read), resolves and checks its
inputs from their headers (MIR ids located, kohya LoRAs mapped onto their base), plans each
key's output shape and the output layout. :func:`merge_recipe` then runs one of
two engines, both writing each result at its planned offset in a temporary file:

- the elementwise engine (:mod:`compiler.merge.stream`) for recipes of elementwise methods with
  constant weights on the CPU — the common merges — streaming chunks of elements through the
  recipe, without importing torch (whose import alone takes longer than merging a model);
- the torch engine (:mod:`compiler.merge.keyed`) for every other recipe — other methods,
  literals, LoRA inputs — key by key.

Both compute in float32 as torch does and round to the output dtype — the same bytes, but for
the rare cases :mod:`compiler.merge.elementwise` describes (NaN bits in a tensor's last few
elements; without the C extension, a double rounding) — whatever the number of threads.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha import check_recipe, format_recipe
from compiler.lang.mecha.ast import Recipe
from compiler.lang.mecha.check import MirResolver
from compiler.lang.mecha.files import read_recipe
from compiler.merge.blocks import Family, FamilyMatcher
from compiler.merge.elementwise import ELEMENTWISE
from compiler.merge.inputs import ModelInput, check_compatible, resolve_inputs
from compiler.merge.keyplan import plan_shapes
from compiler.merge.locate import Identifier
from compiler.merge.lora import attach_loras, check_coverage
from compiler.merge.output import OutputFile, OutputLayout, plan_layout
from compiler.merge.program import Call, Node, Program, bind_recipe, needed, uses_blocks
from compiler.merge.stream import (
    Line,
    Progress,
    Run,
    elementwise_lines,
    plan_runs,
    stream_merge,
)
from compiler.tensorfile import layout_digest

OUTPUT_DTYPES = {"fp16": "F16", "bf16": "BF16", "fp32": "F32"}
FLOATING = frozenset({"F64", "F32", "F16", "BF16"})  # the stored dtypes that are merged as floats


@dataclass(frozen=True)
class MergeOptions:
    recipe: Path
    output: Path
    threads: int = 1
    device: str = "cpu"
    dtype: str = "fp16"
    model_dir: Path | None = None
    missing: str = "error"
    resolver: MirResolver | None = None
    family: FamilyMatcher | None = field(default=None, compare=False)
    identify: Identifier | None = field(default=None, compare=False)  # finds MIR-id models
    progress: Progress | None = field(default=None, compare=False)


@dataclass(frozen=True)
class MergeResult:
    output: Path
    keys: int
    bytes: int
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class MergePlan:
    """Everything known before any tensor is read."""

    recipe: Recipe
    inputs: Mapping[int, ModelInput]
    layout: OutputLayout
    sources: Mapping[str, tuple[int, ...]]  # for each key, the inputs that hold it
    family: Family | None  # the registry's match for the first input (blocks, MIR id)
    program: Program
    output: int  # the expression the output is
    # the elementwise engine's streams, or None: the torch engine runs the merge
    runs: Sequence[Run] | None


def plan_merge(options: MergeOptions) -> MergePlan:
    """Check the recipe and its inputs from headers alone; problems raise MircError."""
    recipe = read_recipe(options.recipe)
    errors = [d for d in check_recipe(recipe, resolver=options.resolver) if d.is_error]
    if errors:
        raise MircError(errors)
    program = _bind(recipe)
    output = len(recipe.expressions) - 1
    order = needed(program, output)
    found = resolve_inputs(
        recipe, options.recipe.parent, options.model_dir, options.identify, (options.output,)
    )
    inputs = attach_loras(recipe, program, {i.index: i for i in found if i.index in order})
    full = {index: i for index, i in inputs.items() if i.lora is None}  # LoRAs map onto these
    problems = check_compatible(list(full.values()), options.missing)
    if problems:
        raise MircError(problems)
    family = _family(options, list(full.values()), uses_blocks(program, order))
    sources = _sources(full)
    held = {key: full[owners[0]].header.tensors[key].shape for key, owners in sources.items()}
    shapes = plan_shapes(recipe, program, order, held, family)  # keys given no value left out
    if options.missing == "error" and (
        problems := check_coverage(recipe, program, order, inputs, shapes)
    ):
        raise MircError(problems)
    tensors = {
        key: _output_type(inputs, sources[key], key, options.dtype, shape)
        for key, shape in shapes.items()
    }
    metadata = merge_metadata(recipe, list(inputs.values()), options.output, family)
    layout = plan_layout(tensors, metadata)
    runs = _runs(program, order, inputs, layout, family) if options.device == "cpu" else None
    return MergePlan(recipe, inputs, layout, sources, family, program, output, runs)


def _bind(recipe: Recipe) -> Program:
    """The recipe bound to its methods; lines that no engine runs raise MircError."""
    program, problems = bind_recipe(recipe, ELEMENTWISE)
    if problems:  # not for the elementwise engine: the torch engine's binding decides
        from compiler.merge.evaluate import compile_recipe

        compile_recipe(recipe)
        program, _ = bind_recipe(recipe)
    return program


def _runs(
    program: Program,
    order: Sequence[int],
    inputs: Mapping[int, ModelInput],
    layout: OutputLayout,
    family: Family | None,
) -> list[Run] | None:
    """The elementwise engine's plan, or None when the recipe or an input needs the torch engine: a
    method that is not elementwise, a literal, a conversion, a LoRA (its delta is computed)."""
    if any(model.lora is not None for model in inputs.values()):
        return None
    if not all(_elementwise(index, program[index]) for index in order):
        return None

    @functools.cache
    def lines(block: str | None) -> tuple[Line, ...] | None:
        return elementwise_lines(program, order, block)

    def lines_of(key: str) -> tuple[Line, ...] | None:
        return lines(family.block_of(key) if family is not None else None)

    headers = {index: model.header for index, model in inputs.items()}
    return plan_runs(layout.tensors, layout.data_start, headers, lines_of)


def _elementwise(index: int, node: Node) -> bool:
    """Whether the elementwise engine runs a line: a model read as stored, or an elementwise
    method."""
    if isinstance(node, int):
        return node == index
    return isinstance(node, Call) and node.method in ELEMENTWISE


def _family(options: MergeOptions, inputs: Sequence[ModelInput], blocks: bool) -> Family | None:
    """The registry's family of the first input; per-block values need one with blocks."""
    first = inputs[0] if inputs else None
    family = options.family(first.header) if options.family and first else None
    if blocks and family is None:
        where = f" ({first.header.path})" if first else ""
        message = (
            "per-block values need a model whose layout the registry knows (a fingerprint with "
            f"a blocks table); none matches the first input{where}"
        )
        raise MircError([Diagnostic.error("merge-blocks", message, Span(str(options.recipe)))])
    return family


def _sources(inputs: Mapping[int, ModelInput]) -> dict[str, tuple[int, ...]]:
    keys = sorted({key for i in inputs.values() for key in i.header.tensors})
    return {key: tuple(i for i, m in inputs.items() if key in m.header.tensors) for key in keys}


def _output_type(
    inputs: Mapping[int, ModelInput],
    held: Sequence[int],
    key: str,
    dtype: str,
    shape: tuple[int, ...],
) -> tuple[str, tuple[int, ...]]:
    info = inputs[held[0]].header.tensors[key]
    return (OUTPUT_DTYPES[dtype] if info.dtype in FLOATING else info.dtype, shape)


def merge_metadata(
    recipe: Recipe, inputs: Sequence[ModelInput], output: Path, family: Family | None = None
) -> dict[str, str]:
    """``__metadata__``: the canonical recipe (as sd-mecha stores it), ModelSpec keys, inputs."""
    names = [Path(i.header.path).name for i in inputs]
    metadata = {
        "mecha_recipe": format_recipe(recipe),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.title": output.stem,
        "modelspec.description": "merged by mirc merge from " + ", ".join(names),
        "mirc.merge_inputs": json.dumps(names),
        "mirc.input_layouts": json.dumps(
            {name: layout_digest(i.header.tensors) for name, i in zip(names, inputs, strict=True)}
        ),
    }
    mirs = sorted({i.mir for i in inputs if i.mir is not None})
    if family is not None:
        metadata["mir_id"] = family.mir
    elif len(mirs) == 1:
        metadata["mir_id"] = mirs[0]
    return metadata


def merge_recipe(options: MergeOptions) -> MergeResult:
    """Run the recipe and write the output atomically; problems raise MircError."""
    plan = plan_merge(options)
    fds = {index: os.open(i.header.path, os.O_RDONLY) for index, i in plan.inputs.items()}
    out = OutputFile(options.output, plan.layout)
    try:
        if plan.runs is not None:
            if options.progress is not None:  # empty tensors have no bytes to stream
                options.progress(sum(t.nbytes == 0 for t in plan.layout.tensors), 0)
            stream_merge(plan.runs, fds, out, options.threads, options.progress)
        else:
            from compiler.merge.keyed import keyed_merge  # imports torch

            keyed_merge(plan, options, fds, out)
        out.commit()
    except BaseException:
        out.abandon()
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    names = tuple(i.name for i in plan.inputs.values())
    return MergeResult(options.output, len(plan.layout.tensors), plan.layout.total, names)
