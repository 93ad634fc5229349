"""``mirc merge``: execute a Mecha recipe over safetensors files, streaming key by key.

:func:`merge_recipe` checks the recipe (before any tensor is read), resolves and checks its
inputs from their headers, plans the output layout, then merges the keys in a thread pool, each
key reading its tensors with positioned reads and writing its result at its planned offset.
Peak memory is about ``threads × inputs × largest tensor``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha import check_recipe, format_recipe
from compiler.lang.mecha.ast import Recipe
from compiler.lang.mecha.check import MirResolver
from compiler.lang.mecha.files import read_recipe
from compiler.merge.blocks import Family, FamilyMatcher
from compiler.merge.evaluate import (
    TORCH_DTYPES,
    Node,
    as_merge_dtype,
    compile_recipe,
    evaluate_key,
    needed,
    read_tensor,
    uses_blocks,
)
from compiler.merge.inputs import ModelInput, check_compatible, resolve_inputs
from compiler.merge.keyplan import plan_shapes
from compiler.merge.locate import Identifier
from compiler.merge.lora import attach_loras, check_coverage, lora_delta
from compiler.merge.output import OutputFile, OutputLayout, OutputTensor, plan_layout
from compiler.tensorfile import layout_digest

OUTPUT_DTYPES = {"fp16": "F16", "bf16": "BF16", "fp32": "F32"}
Progress = Callable[[str, int], None]


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


def plan_merge(options: MergeOptions) -> MergePlan:
    """Check the recipe and its inputs from headers alone; problems raise MircError."""
    recipe = read_recipe(options.recipe)
    errors = [d for d in check_recipe(recipe, resolver=options.resolver) if d.is_error]
    if errors:
        raise MircError(errors)
    compiled = compile_recipe(recipe)
    output = len(recipe.expressions) - 1
    used = set(needed(compiled, output))
    found = resolve_inputs(
        recipe, options.recipe.parent, options.model_dir, options.identify, (options.output,)
    )
    inputs = attach_loras(recipe, compiled, {i.index: i for i in found if i.index in used})
    full = {index: i for index, i in inputs.items() if i.lora is None}  # LoRAs map onto these
    problems = check_compatible(list(full.values()), options.missing)
    if problems:
        raise MircError(problems)
    family = _family(options, list(full.values()), uses_blocks(compiled, needed(compiled, output)))
    sources = _sources(full)
    order = needed(compiled, output)
    held = {key: full[owners[0]].header.tensors[key].shape for key, owners in sources.items()}
    shapes = plan_shapes(recipe, compiled, order, held, family)  # keys given no value left out
    if options.missing == "error" and (
        problems := check_coverage(recipe, compiled, order, inputs, shapes)
    ):
        raise MircError(problems)
    tensors = {
        key: _output_type(inputs, sources[key], key, options.dtype, shape)
        for key, shape in shapes.items()
    }
    metadata = merge_metadata(recipe, list(inputs.values()), options.output, family)
    return MergePlan(recipe, inputs, plan_layout(tensors, metadata), sources, family)


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
    floating = TORCH_DTYPES[info.dtype].is_floating_point
    return (OUTPUT_DTYPES[dtype] if floating else info.dtype, shape)


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
    compiled = compile_recipe(plan.recipe)
    output_index = len(plan.recipe.expressions) - 1
    fds = {index: os.open(i.header.path, os.O_RDONLY) for index, i in plan.inputs.items()}
    out = OutputFile(options.output, plan.layout)
    try:
        merge_one = _key_merger(plan, compiled, output_index, fds, out, options)
        with _one_torch_thread(), ThreadPoolExecutor(max_workers=max(1, options.threads)) as pool:
            for _ in pool.map(merge_one, plan.layout.tensors):
                pass
        out.commit()
    except BaseException:
        out.abandon()
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    names = tuple(i.name for i in plan.inputs.values())
    return MergeResult(options.output, len(plan.layout.tensors), plan.layout.total, names)


def _no_value(key: str, recipe: Path) -> Diagnostic:
    message = f"the recipe gives no value for '{key}' (omit_non_finite found values not finite)"
    notes = ("wrap it in fallback, or give --missing fallback to take the first input's",)
    return Diagnostic.error("merge-no-value", message, Span(str(recipe)), notes)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Keys are the parallel unit: torch's own intra-op threads on top of them oversubscribe
    the cores, and from a worker thread they made a two-core merge ten times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _key_merger(
    plan: MergePlan,
    compiled: Mapping[int, Node],
    output_index: int,
    fds: Mapping[int, int],
    out: OutputFile,
    options: MergeOptions,
) -> Callable[[OutputTensor], None]:
    order = needed(compiled, output_index)

    def read(index: int, key: str) -> torch.Tensor | None:
        model = plan.inputs[index]
        header = model.header
        if model.lora is not None:  # its delta for the key, from that key's modules only
            return lora_delta(model.lora, key, lambda name: read_as_stored(index, name))
        if key not in header.tensors:
            return None
        return read_as_stored(index, key)

    def read_as_stored(index: int, key: str) -> torch.Tensor:
        header = plan.inputs[index].header
        return as_merge_dtype(read_tensor(fds[index], header, key), options.device)

    def merge_one(tensor: OutputTensor) -> None:
        key = tensor.key
        block = plan.family.block_of(key) if plan.family is not None else None
        component = plan.family.component_of(key) if plan.family is not None else None
        result = evaluate_key(compiled, order, key, read, block, component)
        if result is None:  # --missing fallback: the first input that has the key
            if options.missing != "fallback":
                raise MircError([_no_value(key, options.recipe)])
            result = read(plan.sources[key][0], key)
            assert result is not None
        result = result.to(device="cpu", dtype=TORCH_DTYPES[tensor.dtype]).reshape(-1)
        out.write_tensor(tensor, result.contiguous().view(torch.uint8).numpy().data)
        if options.progress is not None:
            options.progress(key, tensor.nbytes)

    return merge_one
