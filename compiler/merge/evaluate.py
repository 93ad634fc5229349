"""Evaluating a recipe for one key: read that key from each input, run the methods in order.

The recipe's expressions are bound to their methods once (:func:`compile_recipe`); each key then
walks the expressions the output needs, keeping only that key's values, so memory stays at one
tensor per input plus the intermediates of one key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from compiler.diagnostics import MircError
from compiler.lang.mecha.ast import Recipe
from compiler.merge.methods import METHODS, MISSING_TOLERANT, MethodFn
from compiler.merge.program import Argument, Call, Operand, bind_recipe, constant
from compiler.tensorfile import SafetensorsHeader
from compiler.tensorfile.positioned import read_at

TORCH_DTYPES: Mapping[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
MERGE_DTYPE = torch.float32


@dataclass(frozen=True, slots=True)
class Step:
    """One bound merge line: the method's math and its arguments by parameter name."""

    fn: MethodFn
    arguments: tuple[tuple[str, Argument], ...]
    tensor_params: frozenset[str]
    missing_tolerant: bool = False  # takes ``None`` for an argument that lacks the key


def compile_recipe(recipe: Recipe) -> dict[int, Step | int]:
    """Each expression as a :class:`Step` (merges) or the index of its input (models)."""
    program, problems = bind_recipe(recipe, METHODS)
    if problems:
        raise MircError(problems)
    return {i: _step(node) if isinstance(node, Call) else node for i, node in program.items()}


def _step(call: Call) -> Step:
    tolerant = call.method in MISSING_TOLERANT
    return Step(METHODS[call.method], call.arguments, call.tensor_params, tolerant)


Reader = Callable[[int, str], Tensor | None]


def evaluate_key(
    compiled: Mapping[int, Step | int],
    order: Sequence[int],
    key: str,
    read: Reader,
    block: str | None = None,
) -> Tensor | None:
    """The value of ``key`` for the last expression of ``order`` (from :func:`needed`);
    ``None`` when an input it needs lacks the key.

    A plain loop, not a recursive closure: a closure that refers to itself is a reference
    cycle, and each key's tensors would wait for the cyclic garbage collector.
    """
    values: dict[int, Tensor | None] = {}
    for index in order:
        node = compiled[index]
        values[index] = read(index, key) if isinstance(node, int) else _run(node, values.get, block)
    return values[order[-1]]


def _run(step: Step, value: Callable[[int], Tensor | None], block: str | None) -> Tensor | None:
    bound: dict[str, object] = {}
    for name, operand in step.arguments:
        if isinstance(operand[0], tuple):
            items = [_resolve(op, name in step.tensor_params, value, block) for op in operand]
            if any(item is None for item in items):
                return None
            bound[name] = tuple(items)
            continue
        resolved = _resolve(operand, name in step.tensor_params, value, block)
        if resolved is None and operand[0] == "ref" and not step.missing_tolerant:
            return None
        bound[name] = resolved
    return step.fn(bound)


def _resolve(
    operand: Operand, tensor: bool, value: Callable[[int], Tensor | None], block: str | None
) -> object:
    if operand[0] == "ref":
        assert isinstance(operand[1], int)
        return value(operand[1])
    content = constant(operand, block)
    if tensor and isinstance(content, int | float) and not isinstance(content, bool):
        return torch.tensor(float(content), dtype=MERGE_DTYPE)
    return content


def read_tensor(fd: int, header: SafetensorsHeader, key: str) -> Tensor:
    """One tensor read with a positioned read at its header offsets (the file is not mapped)."""
    info = header.tensors[key]
    dtype = TORCH_DTYPES[info.dtype]
    begin, end = info.data_offsets
    if end == begin:
        return torch.empty(info.shape, dtype=dtype)
    buffer = bytearray(end - begin)
    read_at(fd, buffer, header.data_start + begin, f"{header.path}: '{key}'")
    return torch.frombuffer(buffer, dtype=dtype).reshape(info.shape)


def as_merge_dtype(tensor: Tensor, device: str) -> Tensor:
    """Floating tensors are merged in float32 on ``device`` (sd-mecha's default merge dtype)."""
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=MERGE_DTYPE)
    return tensor.to(device=device)
