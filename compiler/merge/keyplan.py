"""What the recipe gives each key, known before any tensor is read: the output's shape, or nothing.

The output header is written first, so each key's shape comes from walking the recipe over the
inputs' header shapes: a model gives its tensor's shape, a literal its value's (a number is
0-d, as sd-mecha writes it), a method the shape of its first argument that is not 0-d (numbers
broadcast) unless it declares another (``OUTPUT_SHAPES``: ``stack`` adds a leading dimension);
``fallback`` the shape of its first argument with a value. ``pick_component``,
``omit_component`` and a literal without a value for the key give nothing, and the key is left
out of the output as sd-mecha leaves it out.

The same walk refuses, before any read, what cannot be planned: a component the registry's
layout does not have, literal keys no input or block has, values ``stack`` cannot stack, and
an output that is not a tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from compiler.diagnostics import Diagnostic, MircError, Span, did_you_mean
from compiler.lang.mecha.ast import Dict, Literal, Merge, Recipe, Ref, Str
from compiler.lang.mecha.merges import COMPONENT_METHODS
from compiler.merge.blocks import Family
from compiler.merge.program import Call, LiteralValues, Node, Operand, spread

Shape = tuple[int, ...]
NOT_TENSOR = "not a tensor"  # a literal's string or boolean
Planned = Shape | str | None  # a tensor's shape, NOT_TENSOR, or no value


def stack_shape(shapes: Sequence[Shape]) -> Shape:
    """``stack``'s output: one more leading dimension, the count of values."""
    if not shapes:
        raise ValueError("stack needs at least one value")
    if any(shape != shapes[0] for shape in shapes):
        listed = ", ".join(str(list(shape)) for shape in shapes)
        raise ValueError(f"stack takes values of one shape, not {listed}")
    return (len(shapes), *shapes[0])


# Output shapes of the methods whose output is not shaped like their first tensor argument,
# from the shapes of their tensor arguments (``ValueError``: they do not fit).
OUTPUT_SHAPES: Mapping[str, Callable[[Sequence[Shape]], Shape]] = {"stack": stack_shape}


def plan_shapes(
    recipe: Recipe,
    compiled: Mapping[int, Node],
    order: Sequence[int],
    shapes: Mapping[str, Shape],
    family: Family | None,
) -> dict[str, Shape]:
    """The output's shape for each key of ``shapes`` (the inputs' shape of each key) the recipe
    gives a value; problems raise MircError."""
    problems = check_components(recipe, order, family)
    problems += check_literal_keys(recipe, compiled, order, (set(shapes), family))
    if problems:
        raise MircError(problems)
    planned: dict[str, Shape] = {}
    for key, shape in shapes.items():
        block = family.block_of(key) if family is not None else None
        component = family.component_of(key) if family is not None else None
        try:
            result = _plan_key(compiled, order, shape, (key, block, component))
        except _Unfit as unfit:
            message = f"cannot plan '{key}': {unfit.reason}"
            raise MircError([Diagnostic.error("merge-shape", message, unfit.span)]) from None
        if result == NOT_TENSOR:
            message = f"the recipe's output for '{key}' is a string or a boolean, not a tensor"
            raise MircError([Diagnostic.error("merge-shape", message, recipe.expressions[-1].span)])
        if isinstance(result, tuple):
            planned[key] = result
    return planned


class _Unfit(Exception):
    def __init__(self, span: Span | None, reason: str) -> None:
        super().__init__(reason)
        self.span, self.reason = span, reason


def _plan_key(
    compiled: Mapping[int, Node],
    order: Sequence[int],
    shape: Shape,
    place: tuple[str, str | None, str | None],
) -> Planned:
    key, block, component = place
    planned: dict[int, Planned] = {}
    for index in order:
        node = compiled[index]
        if isinstance(node, int):
            planned[index] = shape
        elif isinstance(node, LiteralValues):
            planned[index] = _operand_shape(node.operand(key, block), planned)
        else:
            planned[index] = _call_shape(node, planned, component)
    return planned[order[-1]]


def _operand_shape(operand: Operand | None, planned: Mapping[int, Planned]) -> Planned:
    if operand is None:
        return None
    kind, content = operand
    if kind == "ref":
        assert isinstance(content, int)
        return planned[content]
    if kind == "const" and (isinstance(content, bool) or not isinstance(content, int | float)):
        return NOT_TENSOR
    return ()  # a number, or a number per block


def _call_shape(call: Call, planned: Mapping[int, Planned], component: str | None) -> Planned:
    if call.method in COMPONENT_METHODS:
        named = dict(call.arguments)["component"][1]
        if (component == named) != (call.method == "pick_component"):
            return None
    tensors: list[Planned] = []
    for name, operand in call.arguments:
        ops = spread(operand)
        found = [_operand_shape(op, planned) for op in ops]
        tensor = name in call.tensor_params
        tensors.extend(s for s, op in zip(found, ops, strict=True) if tensor or op[0] == "ref")
        gone = any(s is None and op[0] == "ref" for s, op in zip(found, ops, strict=True))
        if gone and not call.missing_tolerant:
            return None
    if call.missing_tolerant:  # fallback: the first argument with a value
        return next((s for s in tensors if s is not None), None)
    given = [s for s in tensors if isinstance(s, tuple)]
    declared = OUTPUT_SHAPES.get(call.method)
    if declared is not None:
        try:
            return declared(given)
        except ValueError as exc:
            raise _Unfit(call.span, str(exc)) from None
    return next((s for s in given if s), ())


def check_components(
    recipe: Recipe, order: Sequence[int], family: Family | None
) -> list[Diagnostic]:
    """Each component ``pick_component`` / ``omit_component`` names is one the registry's
    fingerprint of the inputs has (its ``components:`` table)."""
    problems: list[Diagnostic] = []
    for index in order:
        expression = recipe.expressions[index]
        if not isinstance(expression, Merge) or expression.method.value not in COMPONENT_METHODS:
            continue
        named = _component_argument(expression)
        if named is None:
            continue
        known = tuple(family.components) if family is not None else ()
        if named.value in known:
            continue
        problems.append(_unknown_component(expression.method.value, named, family))
    return problems


def _component_argument(merge: Merge) -> Str | None:
    given = [k.value for k in merge.kwargs if k.name == "component"] + list(merge.args[1:2])
    return next((value for value in given if isinstance(value, Str)), None)


def _unknown_component(method: str, named: Str, family: Family | None) -> Diagnostic:
    if family is None or not family.components:
        where = "none matches the first input" if family is None else f"{family.mir} has none"
        message = (
            f"{method} needs a model whose layout the registry knows (a fingerprint with a "
            f"components table); {where}"
        )
        return Diagnostic.error("merge-component", message, named.span)
    known = tuple(family.components)
    notes = did_you_mean(named.value, known) or (f"known: {', '.join(known)}",)
    message = f"the layout of {family.mir} has no component '{named.value}'"
    return Diagnostic.error("merge-component", message, named.span, notes)


def check_literal_keys(
    recipe: Recipe,
    compiled: Mapping[int, Node],
    order: Sequence[int],
    known: tuple[set[str], Family | None],
) -> list[Diagnostic]:
    """Each key of a needed literal is a key of some input, or (a blocks literal) a block."""
    keys, family = known
    problems: list[Diagnostic] = []
    for index in order:
        node, expression = compiled[index], recipe.expressions[index]
        if not isinstance(node, LiteralValues) or not isinstance(expression, Literal):
            continue
        blocks = set(family.blocks) if node.by_block and family is not None else set()
        for keyword in _dict_line(recipe, expression).kwargs:
            if keyword.name not in keys and keyword.name not in blocks:
                problems.append(_unknown_key(keyword.name, keyword.pos.span, keys | blocks))
    return problems


def _dict_line(recipe: Recipe, literal: Literal) -> Dict:
    content = literal.args[0] if literal.args else literal.kwargs[0].value
    assert isinstance(content, Ref)
    line = recipe.expressions[content.index]
    assert isinstance(line, Dict)
    return line


def _unknown_key(name: str, span: Span, known: set[str]) -> Diagnostic:
    message = f"the literal's key '{name}' is neither a key of an input nor a merge block"
    notes = did_you_mean(name, known) or (
        "a literal holds values by state-dict key; for block names give "
        'model_config="sd1-supermerger_blocks" (or sdxl-) with a model the registry knows',
    )
    return Diagnostic.error("merge-literal", message, span, notes)
