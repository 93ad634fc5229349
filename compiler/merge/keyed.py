"""The torch engine: every method, key by key, keys merged in parallel threads.

Each key reads its tensors with positioned reads at the header offsets (of a kohya LoRA input,
its delta for the key: :mod:`compiler.merge.loradelta`), evaluates the recipe in float32 on the
chosen device (:func:`compiler.merge.evaluate.evaluate_key`) and writes its result at its
planned offset. Peak memory is about ``threads × inputs × largest tensor``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.merge.evaluate import (
    TORCH_DTYPES,
    Compiled,
    as_merge_dtype,
    compile_recipe,
    evaluate_key,
    read_tensor,
)
from compiler.merge.loradelta import lora_delta
from compiler.merge.output import OutputFile, OutputTensor
from compiler.merge.program import needed

if TYPE_CHECKING:
    from compiler.merge.engine import MergeOptions, MergePlan


def keyed_merge(
    plan: MergePlan, options: MergeOptions, fds: Mapping[int, int], out: OutputFile
) -> None:
    """Merge every tensor of ``out``'s layout, keys in ``options.threads`` threads."""
    compiled = compile_recipe(plan.recipe)
    merge_one = _key_merger(plan, options, compiled, fds, out)
    with _one_torch_thread(), ThreadPoolExecutor(max_workers=max(1, options.threads)) as pool:
        for _ in pool.map(merge_one, out.layout.tensors):
            pass


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
    options: MergeOptions,
    compiled: Mapping[int, Compiled],
    fds: Mapping[int, int],
    out: OutputFile,
) -> Callable[[OutputTensor], None]:
    order = needed(plan.program, plan.output)

    def read(index: int, key: str) -> torch.Tensor | None:
        model = plan.inputs[index]
        if model.lora is not None:  # its delta for the key, from that key's modules only
            return lora_delta(model.lora, key, lambda name: read_as_stored(index, name))
        if key not in model.header.tensors:
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
            options.progress(1, tensor.nbytes)

    return merge_one
