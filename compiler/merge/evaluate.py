"""Evaluating a recipe for one key: read that key from each input, run the methods in order.

The recipe's expressions are bound to their methods once (:func:`compile_recipe`); each key then
walks the expressions the output needs, keeping only that key's values, so memory stays at one
tensor per input plus the intermediates of one key. A ``literal`` line is a state dict written
out: a value per key (or per block), numbers, strings, booleans or other lines' results.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha.ast import (
    Bool,
    Dict,
    Float,
    Int,
    Literal,
    Merge,
    Model,
    Null,
    Recipe,
    Ref,
    Str,
)
from compiler.lang.mecha.ast import Value as AstValue
from compiler.lang.mecha.binding import bind
from compiler.lang.mecha.catalogue import LITERAL_SIGNATURE, Method, load_catalogue
from compiler.merge.methods import COMPONENT_METHODS, METHODS, MISSING_TOLERANT, MethodFn
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

# ("ref", index), ("const", value), ("blocks", (values by block, default)) or
# ("key_component", None): the model component the key belongs to
Operand = tuple[str, object]


@dataclass(frozen=True, slots=True)
class Step:
    """One bound merge line: the method's math and its arguments by parameter name."""

    fn: MethodFn
    arguments: tuple[tuple[str, Operand | tuple[Operand, ...]], ...]
    tensor_params: frozenset[str]
    missing_tolerant: bool = False  # takes ``None`` for an argument that lacks the key
    identifier: str = ""
    span: Span | None = None  # the merge line, for problems found at run time


@dataclass(frozen=True, slots=True)
class LiteralValues:
    """A ``literal`` line: its dict's values (constants or references) by state-dict key, or by
    block name when its model config is a blocks config (``sd1-supermerger_blocks``) or not
    given; a key it has no value for has none here either (sd-mecha's missing key)."""

    values: Mapping[str, Operand]
    by_block: bool

    def operand(self, key: str, block: str | None) -> Operand | None:
        found = self.values.get(key)
        if found is None and self.by_block and block is not None:
            found = self.values.get(block)
        return found


Node = Step | LiteralValues | int


def compile_recipe(recipe: Recipe) -> dict[int, Node]:
    """Each expression as a :class:`Step` (merges), :class:`LiteralValues` (literals) or the
    index of the input it reads (models, and conversions of a model: see :func:`_converted`);
    ``dict`` lines are read where they are used."""
    catalogue = load_catalogue()
    compiled: dict[int, Node] = {}
    problems: list[Diagnostic] = []
    dicts: dict[int, Dict] = {}
    for index, expression in enumerate(recipe.expressions):
        if isinstance(expression, Model):
            compiled[index] = index
        elif isinstance(expression, Dict):
            dicts[index] = expression
        elif isinstance(expression, Literal):
            compiled[index] = _literal(expression, dicts, problems)
        elif (source := _converted(expression, compiled)) is not None:
            compiled[index] = source
        elif expression.method.value in METHODS:
            method = catalogue.methods[expression.method.value]
            compiled[index] = _step(method, expression, (dicts, problems))
        else:
            message = f"mirc merge cannot execute '{expression.method.value}' yet"
            problems.append(Diagnostic.error("merge-unsupported", message, expression.span))
    if problems:
        raise MircError(problems)
    return compiled


def _literal(literal: Literal, dicts: Mapping[int, Dict], problems: list[Diagnostic]) -> Node:
    """The checker has made sure the first argument is a reference to a ``dict`` line."""
    binding = bind(LITERAL_SIGNATURE, literal.args, [(k.name, k.value) for k in literal.kwargs])
    content, config = binding.value_of("value_dict"), binding.value_of("model_config")
    assert isinstance(content, Ref) and content.index in dicts
    values: dict[str, Operand] = {}
    for keyword in dicts[content.index].kwargs:
        if isinstance(keyword.value, Null):
            message = "mirc merge takes literal values that are numbers, strings, booleans or lines"
            problems.append(Diagnostic.error("merge-unsupported", message, keyword.value.span))
            continue
        values[keyword.name] = _operand(keyword.value)
    # sd-mecha's block configs are the ``<architecture>-supermerger_blocks`` ones
    by_block = not isinstance(config, Str) or config.value.endswith("_blocks")
    return LiteralValues(values, by_block)


def _converted(merge: Merge, compiled: Mapping[int, Node]) -> int | None:
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


def _step(
    method: Method,
    merge: Merge,
    dict_lines: tuple[Mapping[int, Dict], list[Diagnostic]],
) -> Step:
    binding = bind(method, merge.args, [(k.name, k.value) for k in merge.kwargs])
    arguments: list[tuple[str, Operand | tuple[Operand, ...]]] = []
    for param in method.params:
        given = [_operand(v) for p, v in binding.values if p is param]
        default: Operand = ("const", param.default)
        given = [_per_block(op, dict_lines, param.default) for op in given]
        if param.kind == "varargs":
            arguments.append((param.name, tuple(given)))
        else:
            arguments.append((param.name, given[0] if given else default))
    if method.identifier in COMPONENT_METHODS:
        arguments.append(("key_component", ("key_component", None)))
    # a number given for a type variable (fallback's, pick_component's) is a tensor too
    tensors = frozenset(p.name for p in method.params if p.type in ("Tensor", "T"))
    tolerant = method.identifier in MISSING_TOLERANT
    fn = METHODS[method.identifier]
    return Step(fn, tuple(arguments), tensors, tolerant, method.identifier, merge.span)


def _per_block(
    operand: Operand, dict_lines: tuple[Mapping[int, Dict], list[Diagnostic]], default: object
) -> Operand:
    """A reference to a ``dict`` line becomes its per-block values (with the default)."""
    kind, content = operand
    dicts, problems = dict_lines
    if kind == "ref" and isinstance(content, int) and content in dicts:
        return ("blocks", (_block_values(dicts[content], problems), default))
    return operand


def spread(argument: Operand | tuple[Operand, ...]) -> tuple[Operand, ...]:
    """An argument's operands: those of ``*varargs`` (maybe none), or the one."""
    if not argument or isinstance(argument[0], tuple):
        return argument
    return (argument,)


def operands(node: Node) -> tuple[Operand, ...]:
    """Every operand of a merge or a literal, ``*varargs`` spread out."""
    if isinstance(node, LiteralValues):
        return tuple(node.values.values())
    if isinstance(node, int):
        return ()
    return tuple(op for _, argument in node.arguments for op in spread(argument))


def uses_blocks(compiled: Mapping[int, Node], order: Sequence[int]) -> bool:
    """Whether any needed merge takes per-block values."""
    return any(op[0] == "blocks" for index in order for op in operands(compiled[index]))


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


class Place(NamedTuple):
    """Where a key sits in its model: its merge block and its component (``None``: unknown)."""

    block: str | None = None
    component: str | None = None


def evaluate_key(
    compiled: Mapping[int, Node],
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
    for name, operand in step.arguments:
        if not operand or isinstance(operand[0], tuple):  # *varargs
            items = [
                _resolve(op, name in step.tensor_params, value, place) for op in spread(operand)
            ]
            if any(item is None for item in items):
                return None
            bound[name] = tuple(items)
            continue
        resolved = _resolve(operand, name in step.tensor_params, value, place)
        if resolved is None and operand[0] == "ref" and not step.missing_tolerant:
            return None
        bound[name] = resolved
    try:
        return step.fn(bound)
    except ValueError as exc:  # arguments the method's math refuses (a cast to an unknown dtype)
        message = f"{step.identifier} cannot merge '{key}': {exc}"
        raise MircError([Diagnostic.error("merge-method", message, step.span)]) from None


def _resolve(
    operand: Operand, tensor: bool, value: Callable[[int], object], place: Place
) -> object:
    kind, content = operand
    if kind == "ref":
        assert isinstance(content, int)
        content = value(content)  # a tensor, or a literal's number, string or boolean
    elif kind == "key_component":
        return place.component
    elif kind == "blocks":
        assert isinstance(content, tuple)
        by_block, default = content
        content = by_block.get(place.block, default) if place.block is not None else default
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


def needed(compiled: Mapping[int, Node], output: int) -> Sequence[int]:
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
        if isinstance(node, int) and node != index:
            stack.append(node)  # the model a conversion reads
        stack.extend(op[1] for op in operands(node) if op[0] == "ref")  # type: ignore[misc]
    return sorted(seen)
