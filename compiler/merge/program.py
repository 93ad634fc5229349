"""A recipe bound to its methods' parameters, without any tensor library.

:func:`bind_recipe` turns each ``merge`` line into a :class:`Call` (the method's identifier and
its arguments by parameter name) and each ``model`` line into its own index, once per merge.
Everything here is plain data, so planning a merge — and running it with the numpy engine —
never imports torch; the torch engine (:mod:`compiler.merge.evaluate`) binds a ``Call`` to its
method's math.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic
from compiler.lang.mecha.ast import (
    Bool,
    Dict,
    Expression,
    Float,
    Int,
    Merge,
    Model,
    Null,
    Recipe,
    Ref,
    Str,
)
from compiler.lang.mecha.ast import Value as AstValue
from compiler.lang.mecha.binding import bind
from compiler.lang.mecha.catalogue import Method, load_catalogue

# ("ref", index), ("const", value) or ("blocks", (values by block, default))
Operand = tuple[str, object]
Argument = Operand | tuple[Operand, ...]  # a tuple of operands for a ``*args`` parameter


@dataclass(frozen=True, slots=True)
class Call:
    """One bound merge line: the method's identifier and its arguments by parameter name."""

    method: str
    arguments: tuple[tuple[str, Argument], ...]
    tensor_params: frozenset[str]


Program = Mapping[int, "Call | int"]  # each expression: a Call, or the index of its model line


def bind_recipe(
    recipe: Recipe, supported: Container[str] | None = None
) -> tuple[dict[int, Call | int], list[Diagnostic]]:
    """Each ``merge`` line as a :class:`Call` and each ``model`` line as its index, with the
    lines an engine running the ``supported`` methods (default: all of sd-mecha's) cannot
    execute — other methods and commands, ``dict`` values that are references — in line order."""
    catalogue = load_catalogue()
    supported = catalogue.methods if supported is None else supported
    program: dict[int, Call | int] = {}
    problems: list[Diagnostic] = []
    dicts: dict[int, dict[str, object]] = {}
    for index, expression in enumerate(recipe.expressions):
        if isinstance(expression, Model):
            program[index] = index
        elif isinstance(expression, Dict):
            dicts[index] = _block_values(expression, problems)
        elif isinstance(expression, Merge) and expression.method.value in supported:
            program[index] = _call(catalogue.methods[expression.method.value], expression, dicts)
        else:
            problems.append(cannot_execute(expression))
    return program, problems


def cannot_execute(expression: Expression) -> Diagnostic:
    """The refusal of a line mirc does not run."""
    what = expression.method.value if isinstance(expression, Merge) else expression.command
    message = f"mirc merge cannot execute '{what}' yet"
    return Diagnostic.error("merge-unsupported", message, expression.span)


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


def _call(method: Method, merge: Merge, dicts: Mapping[int, Mapping[str, object]]) -> Call:
    binding = bind(method, merge.args, [(k.name, k.value) for k in merge.kwargs])
    arguments: list[tuple[str, Argument]] = []
    for param in method.params:
        given = [_operand(v) for p, v in binding.values if p is param]
        default: Operand = ("const", param.default)
        given = [_per_block(op, dicts, param.default) for op in given]
        if param.kind == "varargs":
            arguments.append((param.name, tuple(given)))
        else:
            arguments.append((param.name, given[0] if given else default))
    tensors = frozenset(p.name for p in method.params if p.type == "Tensor")
    return Call(method.identifier, tuple(arguments), tensors)


def _per_block(
    operand: Operand, dicts: Mapping[int, Mapping[str, object]], default: object
) -> Operand:
    """A reference to a ``dict`` line becomes its per-block values (with the default)."""
    kind, content = operand
    if kind == "ref" and isinstance(content, int) and content in dicts:
        return ("blocks", (dicts[content], default))
    return operand


def _operand(value: AstValue) -> Operand:
    if isinstance(value, Ref):
        return ("ref", value.index)
    if isinstance(value, Null):
        return ("const", None)
    if isinstance(value, Dict):  # pragma: no cover - a Ref always points at a dict line
        raise AssertionError
    assert isinstance(value, Str | Int | Float | Bool)
    return ("const", value.value)


def is_varargs(argument: Argument) -> bool:
    """Whether ``argument`` is the tuple of operands of a ``*args`` parameter."""
    return not argument or isinstance(argument[0], tuple)


def operands(argument: Argument) -> tuple[Operand, ...]:
    """The operands of one argument (several for a ``*args`` parameter)."""
    return argument if is_varargs(argument) else (argument,)  # type: ignore[return-value]


def constant(operand: Operand, block: str | None) -> object:
    """The value of a ``const`` or ``blocks`` operand for a key of ``block``."""
    kind, content = operand
    if kind == "blocks":
        assert isinstance(content, tuple)
        by_block, default = content
        return by_block.get(block, default) if block is not None else default
    return content


def uses_blocks(program: Program, order: Sequence[int]) -> bool:
    """Whether any needed merge takes per-block values."""
    return any(
        op[0] == "blocks"
        for index in order
        if isinstance(call := program[index], Call)
        for _, argument in call.arguments
        for op in operands(argument)
    )


def needed(program: Program, output: int) -> Sequence[int]:
    """The expressions the output depends on, in line order (references point to earlier lines,
    so line order computes every value before its users), the output last."""
    stack = [output]
    seen: set[int] = set()
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        node = program[index]
        if isinstance(node, Call):
            for _, argument in node.arguments:
                stack.extend(op[1] for op in operands(argument) if op[0] == "ref")  # type: ignore[misc]
    return sorted(seen)
