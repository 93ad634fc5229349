"""Evaluating a recipe for one key: read that key from each input, run the methods in order.

The recipe's expressions are bound to their methods once (:func:`compile_recipe`); each key then
walks the expressions the output needs, keeping only that key's values, so memory stays at one
tensor per input plus the intermediates of one key. A ``literal`` line is a state dict written
out: a value per key (or per block), numbers, strings, booleans or other lines' results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from compiler.diagnostics import Diagnostic, MircError
from compiler.lang.mecha.ast import Recipe
from compiler.merge.methods import METHODS, MethodFn
from compiler.merge.program import (
    Call,
    LiteralValues,
    Operand,
    bind_recipe,
    constant,
    spread,
)
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
    """One bound merge line (its method, arguments and place) with the method's math."""

    fn: MethodFn
    call: Call


Compiled = Step | LiteralValues | int


def compile_recipe(recipe: Recipe) -> dict[int, Compiled]:
    """Each expression as a :class:`Step` (merges), :class:`LiteralValues` (literals) or the
    index of the input it reads (models, and conversions of a model); lines the torch engine
    cannot run raise MircError."""
    program, problems = bind_recipe(recipe, METHODS)
    if problems:
        raise MircError(problems)
    return {i: _step(node) if isinstance(node, Call) else node for i, node in program.items()}


def _step(call: Call) -> Step:
    return Step(METHODS[call.method], call)


Reader = Callable[[int, str], Tensor | None]


class Place(NamedTuple):
    """Where a key sits in its model: its merge block and its component (``None``: unknown)."""

    block: str | None = None
    component: str | None = None


def evaluate_key(
    compiled: Mapping[int, Compiled],
    order: Sequence[int],
    key: str,
    read: Reader,
    block: str | None = None,
    component: str | None = None,
) -> Tensor | None:
    """The value of ``key`` for the last expression of ``order`` (from :func:`needed`);
    ``None`` when an input it needs lacks the key.

    A plain loop, not a recursive closure: a closure that refers to itself is a reference
    cycle, and each key's tensors would wait for the cyclic garbage collector.
    """
    place = Place(block, component)
    values: dict[int, object] = {}
    for index in order:
        node = compiled[index]
        if isinstance(node, int):  # a model, or a conversion reading one (already read)
            values[index] = read(index, key) if node == index else values[node]
        elif isinstance(node, LiteralValues):
            found = node.operand(key, block)
            values[index] = None if found is None else _resolve(found, False, values.get, place)
        else:
            values[index] = _run(node, values.get, place, key)
    result = values[order[-1]]
    if result is None or isinstance(result, Tensor):
        return result
    assert isinstance(result, int | float)  # the plan refuses other literal outputs
    return torch.tensor(float(result), dtype=MERGE_DTYPE)


def _run(step: Step, value: Callable[[int], object], place: Place, key: str) -> Tensor | None:
    bound: dict[str, object] = {}
    call = step.call
    for name, operand in call.arguments:
        if not operand or isinstance(operand[0], tuple):  # *varargs
            items = [
                _resolve(op, name in call.tensor_params, value, place) for op in spread(operand)
            ]
            if any(item is None for item in items):
                return None
            bound[name] = tuple(items)
            continue
        resolved = _resolve(operand, name in call.tensor_params, value, place)
        if resolved is None and operand[0] == "ref" and not call.missing_tolerant:
            return None
        bound[name] = resolved
    try:
        return step.fn(bound)
    except ValueError as exc:  # arguments the method's math refuses (a cast to an unknown dtype)
        message = f"{call.method} cannot merge '{key}': {exc}"
        raise MircError([Diagnostic.error("merge-method", message, call.span)]) from None


def _resolve(
    operand: Operand, tensor: bool, value: Callable[[int], object], place: Place
) -> object:
    kind, content = operand
    if kind == "ref":
        assert isinstance(content, int)
        content = value(content)  # a tensor, or a literal's number, string or boolean
    elif kind == "key_component":
        return place.component
    else:
        content = constant(operand, place.block)
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
