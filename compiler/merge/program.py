"""A recipe bound to its methods' parameters, without any tensor library.

:func:`bind_recipe` turns each ``merge`` line into a :class:`Call` (the method's identifier and
its arguments by parameter name), each ``literal`` line into its :class:`LiteralValues` and each
``model`` line into its own index (a conversion of a model, into the index of the model it
reads), once per merge. Everything here is plain data, so planning a merge — and running it
with the elementwise engine — never imports torch; the torch engine
(:mod:`compiler.merge.evaluate`) binds a ``Call`` to its method's math.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic, Span
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
from compiler.lang.mecha.merges import COMPONENT_METHODS

# ("ref", index), ("const", value), ("blocks", (values by block, default)) or
# ("key_component", None): the model component the key belongs to
Operand = tuple[str, object]
Argument = Operand | tuple[Operand, ...]  # a tuple of operands for a ``*args`` parameter
# Methods whose arguments may lack the key: they get ``None`` instead of making the key missing.
MISSING_TOLERANT = frozenset({"fallback"})


@dataclass(frozen=True, slots=True)
class Call:
    """One bound merge line: the method's identifier and its arguments by parameter name."""

    method: str
    arguments: tuple[tuple[str, Argument], ...]
    tensor_params: frozenset[str]
    missing_tolerant: bool = False  # takes ``None`` for an argument that lacks the key
    span: Span | None = None  # the merge line, for problems found at run time


@dataclass(frozen=True, slots=True)
class LiteralValues:
    """A ``literal`` line: its dict's values (constants or references) by state-dict key, or by
    block name when its model config is a blocks config (``sd1-supermerger_blocks``) or not
    given; a key it has no value for has none here either (sd-mecha's missing key)."""

    values: Mapping[str, Operand]
    by_block: bool

    def operand(self, key: str, block: str | None) -> Operand | None:
        """The value given for ``key`` (or for its block), or None."""
        found = self.values.get(key)
        if found is None and self.by_block and block is not None:
            found = self.values.get(block)
        return found


Node = Call | LiteralValues | int
Program = Mapping[int, Node]  # each expression: a Call, a literal, or the index of the model read


def bind_recipe(
    recipe: Recipe, supported: Container[str] | None = None
) -> tuple[dict[int, Node], list[Diagnostic]]:
    """Each ``merge`` line as a :class:`Call`, each ``literal`` as :class:`LiteralValues` and
    each ``model`` line (or conversion of one, see :func:`_converted`) as the index of the input
    it reads, with the lines an engine running the ``supported`` methods (default: all of
    sd-mecha's) cannot execute — other methods, ``dict`` values it cannot take — in line order.
    ``dict`` lines are read where they are used."""
    catalogue = load_catalogue()
    supported = catalogue.methods if supported is None else supported
    program: dict[int, Node] = {}
    problems: list[Diagnostic] = []
    dicts: dict[int, Dict] = {}
    for index, expression in enumerate(recipe.expressions):
        if isinstance(expression, Model):
            program[index] = index
        elif isinstance(expression, Dict):
            dicts[index] = expression
        elif isinstance(expression, Literal):
            program[index] = _literal(expression, dicts, problems)
        elif (source := _converted(expression, program)) is not None:
            program[index] = source
        elif expression.method.value in supported:
            method = catalogue.methods[expression.method.value]
            program[index] = _call(method, expression, (dicts, problems))
        else:
            problems.append(cannot_execute(expression))
    return program, problems


def cannot_execute(merge: Merge) -> Diagnostic:
    """The refusal of a line mirc does not run."""
    message = f"mirc merge cannot execute '{merge.method.value}' yet"
    return Diagnostic.error("merge-unsupported", message, merge.span)


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


def _converted(merge: Merge, program: Mapping[int, Node]) -> int | None:
    """The input a conversion reads, when it converts a model: a kohya LoRA to its base's keys
    (``convert_'sd1-kohya_kohya_lora'_to_base``, then ``convert_'sd1-kohya'_to_'sd1-ldm'``).
    The plan maps the LoRA's keys onto its base and refuses any other model
    (``lora.attach_loras``), so the conversion is that input read under the base's keys."""
    method = load_catalogue().methods.get(merge.method.value)
    if method is None or not method.conversion or len(merge.args) != 1 or merge.kwargs:
        return None
    source = merge.args[0]
    node = program.get(source.index) if isinstance(source, Ref) else None
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


def _call(
    method: Method, merge: Merge, dict_lines: tuple[Mapping[int, Dict], list[Diagnostic]]
) -> Call:
    binding = bind(method, merge.args, [(k.name, k.value) for k in merge.kwargs])
    arguments: list[tuple[str, Argument]] = []
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
    return Call(method.identifier, tuple(arguments), tensors, tolerant, merge.span)


def _per_block(
    operand: Operand, dict_lines: tuple[Mapping[int, Dict], list[Diagnostic]], default: object
) -> Operand:
    """A reference to a ``dict`` line becomes its per-block values (with the default)."""
    kind, content = operand
    dicts, problems = dict_lines
    if kind == "ref" and isinstance(content, int) and content in dicts:
        return ("blocks", (_block_values(dicts[content], problems), default))
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


def spread(argument: Argument) -> tuple[Operand, ...]:
    """An argument's operands: those of ``*varargs`` (maybe none), or the one."""
    return argument if is_varargs(argument) else (argument,)  # type: ignore[return-value]


def operands(node: Node) -> tuple[Operand, ...]:
    """Every operand of a merge or a literal, ``*varargs`` spread out."""
    if isinstance(node, LiteralValues):
        return tuple(node.values.values())
    if isinstance(node, int):
        return ()
    return tuple(op for _, argument in node.arguments for op in spread(argument))


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
    return any(op[0] == "blocks" for index in order for op in operands(program[index]))


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
        if isinstance(node, int) and node != index:
            stack.append(node)  # the model a conversion reads
        stack.extend(op[1] for op in operands(node) if op[0] == "ref")  # type: ignore[misc]
    return sorted(seen)
