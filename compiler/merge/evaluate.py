"""Evaluating a recipe for one key: read that key from each input, run the methods in order.

The recipe's expressions are bound to their methods once (:func:`compile_recipe`); each key then
walks the expressions the output needs, keeping only that key's values, so memory stays at one
tensor per input plus the intermediates of one key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from compiler.diagnostics import Diagnostic, MircError
from compiler.lang.mecha.ast import Bool, Dict, Float, Int, Merge, Model, Null, Recipe, Ref, Str
from compiler.lang.mecha.ast import Value as AstValue
from compiler.lang.mecha.binding import bind
from compiler.lang.mecha.catalogue import Method, load_catalogue
from compiler.merge.methods import METHODS, MISSING_TOLERANT, MethodFn
from compiler.tensorfile import SafetensorsHeader

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

# ("ref", index), ("const", value) or ("blocks", (values by block, default))
Operand = tuple[str, object]


@dataclass(frozen=True, slots=True)
class Step:
    """One bound merge line: the method's math and its arguments by parameter name."""

    fn: MethodFn
    arguments: tuple[tuple[str, Operand | tuple[Operand, ...]], ...]
    tensor_params: frozenset[str]
    missing_tolerant: bool = False  # takes ``None`` for an argument that lacks the key


def compile_recipe(recipe: Recipe) -> dict[int, Step | int]:
    """Each expression as a :class:`Step` (merges) or the index of the input it reads (models,
    and conversions of a model: see :func:`_converted`)."""
    catalogue = load_catalogue()
    compiled: dict[int, Step | int] = {}
    problems: list[Diagnostic] = []
    dicts: dict[int, dict[str, object]] = {}
    for index, expression in enumerate(recipe.expressions):
        if isinstance(expression, Model):
            compiled[index] = index
        elif isinstance(expression, Dict):
            dicts[index] = _block_values(expression, problems)
        elif (
            isinstance(expression, Merge)
            and (source := _converted(expression, compiled)) is not None
        ):
            compiled[index] = source
        elif isinstance(expression, Merge) and expression.method.value in METHODS:
            method = catalogue.methods[expression.method.value]
            compiled[index] = _step(method, expression, dicts)
        else:
            what = expression.method.value if isinstance(expression, Merge) else expression.command
            message = f"mirc merge cannot execute '{what}' yet"
            problems.append(Diagnostic.error("merge-unsupported", message, expression.span))
    if problems:
        raise MircError(problems)
    return compiled


def _converted(merge: Merge, compiled: Mapping[int, Step | int]) -> int | None:
    """The input a conversion reads, when it converts a model: a kohya LoRA to its base's keys
    (``convert_'sd1-kohya_kohya_lora'_to_base``, then ``convert_'sd1-kohya'_to_'sd1-ldm'``).
    The plan maps the LoRA's keys onto its base and refuses any other model
    (``lora.attach_loras``), so the conversion is that input read under the base's keys."""
    method = load_catalogue().methods.get(merge.method.value)
    if method is None or not method.conversion or len(merge.args) != 1 or merge.kwargs:
        return None
    source = merge.args[0]
    node = compiled.get(source.index) if isinstance(source, Ref) else None
    return node if isinstance(node, int) else None


def _block_values(mapping: Dict, problems: list[Diagnostic]) -> dict[str, object]:
    """A ``dict`` line as per-block values (constants only)."""
    values: dict[str, object] = {}
    for keyword in mapping.kwargs:
        if isinstance(keyword.value, Ref | Null):
            message = "mirc merge takes per-block values that are numbers, strings or booleans"
            problems.append(Diagnostic.error("merge-unsupported", message, keyword.value.span))
            continue
        values[keyword.name] = keyword.value.value
    return values


def _step(method: Method, merge: Merge, dicts: Mapping[int, Mapping[str, object]]) -> Step:
    binding = bind(method, merge.args, [(k.name, k.value) for k in merge.kwargs])
    arguments: list[tuple[str, Operand | tuple[Operand, ...]]] = []
    for param in method.params:
        given = [_operand(v) for p, v in binding.values if p is param]
        default: Operand = ("const", param.default)
        given = [_per_block(op, dicts, param.default) for op in given]
        if param.kind == "varargs":
            arguments.append((param.name, tuple(given)))
        else:
            arguments.append((param.name, given[0] if given else default))
    tensors = frozenset(p.name for p in method.params if p.type == "Tensor")
    tolerant = method.identifier in MISSING_TOLERANT
    return Step(METHODS[method.identifier], tuple(arguments), tensors, tolerant)


def _per_block(
    operand: Operand, dicts: Mapping[int, Mapping[str, object]], default: object
) -> Operand:
    """A reference to a ``dict`` line becomes its per-block values (with the default)."""
    kind, content = operand
    if kind == "ref" and isinstance(content, int) and content in dicts:
        return ("blocks", (dicts[content], default))
    return operand


def uses_blocks(compiled: Mapping[int, Step | int], order: Sequence[int]) -> bool:
    """Whether any needed merge takes per-block values."""
    return any(
        op[0] == "blocks"
        for index in order
        if isinstance(step := compiled[index], Step)
        for _, operand in step.arguments
        for op in (operand if isinstance(operand[0], tuple) else (operand,))
    )


def _operand(value: AstValue) -> Operand:
    if isinstance(value, Ref):
        return ("ref", value.index)
    if isinstance(value, Null):
        return ("const", None)
    if isinstance(value, Dict):  # pragma: no cover - a Ref always points at a dict line
        raise AssertionError
    assert isinstance(value, Str | Int | Float | Bool)
    return ("const", value.value)


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
        if isinstance(node, int):  # a model, or a conversion reading one (already read)
            values[index] = read(index, key) if node == index else values[node]
        else:
            values[index] = _run(node, values.get, block)
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
    kind, content = operand
    if kind == "ref":
        assert isinstance(content, int)
        return value(content)
    if kind == "blocks":
        assert isinstance(content, tuple)
        by_block, default = content
        content = by_block.get(block, default) if block is not None else default
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
    view = memoryview(buffer)
    done = 0
    while done < len(buffer):
        count = os.preadv(fd, [view[done:]], header.data_start + begin + done)
        if count == 0:
            raise OSError(f"{header.path}: file ended inside '{key}'")
        done += count
    return torch.frombuffer(buffer, dtype=dtype).reshape(info.shape)


def as_merge_dtype(tensor: Tensor, device: str) -> Tensor:
    """Floating tensors are merged in float32 on ``device`` (sd-mecha's default merge dtype)."""
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=MERGE_DTYPE)
    return tensor.to(device=device)


def needed(compiled: Mapping[int, Step | int], output: int) -> Sequence[int]:
    """The expressions the output depends on, in line order (references point to earlier lines,
    so line order computes every value before its users), the output last."""
    stack = [output]
    seen: set[int] = set()
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = compiled[index]
        if isinstance(node, Step):
            for _, operand in node.arguments:
                ops = operand if isinstance(operand[0], tuple) else (operand,)
                stack.extend(op[1] for op in ops if op[0] == "ref")  # type: ignore[misc]
        else:
            stack.append(node)  # the model a conversion reads
    return sorted(seen)
