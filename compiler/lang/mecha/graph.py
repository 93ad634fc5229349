"""Recipes as graphs, so two recipes compare equal when they merge the same thing.

:class:`RecipeGraph` is dialect-neutral and canonical: the nodes reachable from the output, each
once (identical subgraphs merge), listed depth-first from the output with arguments in order and
keyword arguments by name; a node's operands are constants or indices of earlier nodes. Line
order, duplicated lines, unused lines, comments and the spelling (``call`` or ``merge``,
``model "x"`` or ``model "x" model_config=null``) make no difference.

:func:`sd_mecha_form` goes one step further and builds what ``sd_mecha.deserialize`` builds:
arguments bound to the method's parameters with defaults filled in, scalars wrapped in
``convert_singleton`` literals, dicts in literals, model paths normalised like ``pathlib``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePath

from compiler.diagnostics import MircError
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
    Value,
)
from compiler.lang.mecha.binding import Binding, bind
from compiler.lang.mecha.catalogue import (
    LITERAL_SIGNATURE,
    MODEL_SIGNATURE,
    Catalogue,
    Method,
    load_catalogue,
)
from compiler.lang.mecha.check import check_recipe

ConstValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Const:
    """A constant operand; ``kind`` keeps ``1``, ``1.0`` and ``true`` apart."""

    kind: str  # "str", "int", "float", "bool" or "null"
    value: ConstValue


@dataclass(frozen=True, slots=True)
class Node:
    """An operand that is another node of the graph (by index)."""

    index: int


Operand = Const | Node
Pairs = tuple[tuple[str, Operand], ...]


@dataclass(frozen=True, slots=True)
class ModelNode:
    path: str
    model_config: str | None = None
    merge_space: str | None = None


@dataclass(frozen=True, slots=True)
class MergeNode:
    method: str
    args: tuple[Operand, ...] = ()
    kwargs: Pairs = ()


@dataclass(frozen=True, slots=True)
class LiteralNode:
    value: Operand
    model_config: str | None = None
    merge_space: str | None = None


@dataclass(frozen=True, slots=True)
class DictNode:
    items: Pairs = ()


GraphNode = ModelNode | MergeNode | LiteralNode | DictNode


@dataclass(frozen=True, slots=True)
class RecipeGraph:
    """The canonical graph of a recipe; the last node is the output."""

    nodes: tuple[GraphNode, ...]


def const(value: ConstValue) -> Const:
    """The constant operand for a Python value."""
    if value is None:
        return Const("null", None)
    kind = "bool" if isinstance(value, bool) else type(value).__name__
    return Const(kind, value)


def operands(node: GraphNode) -> list[Operand]:
    """A node's operands in canonical order (keyword arguments and dict items by name)."""
    if isinstance(node, MergeNode):
        return [*node.args, *(value for _, value in sorted(node.kwargs))]
    if isinstance(node, LiteralNode):
        return [node.value]
    if isinstance(node, DictNode):
        return [value for _, value in sorted(node.items)]
    return []


def _renumber(node: GraphNode, new: Callable[[int], int]) -> GraphNode:
    def move(operand: Operand) -> Operand:
        return Node(new(operand.index)) if isinstance(operand, Node) else operand

    if isinstance(node, MergeNode):
        kwargs = tuple(sorted((k, move(v)) for k, v in node.kwargs))
        return MergeNode(node.method, tuple(move(a) for a in node.args), kwargs)
    if isinstance(node, LiteralNode):
        return replace(node, value=move(node.value))
    if isinstance(node, DictNode):
        return DictNode(tuple(sorted((k, move(v)) for k, v in node.items)))
    return node


def canonical(root: int, source: Callable[[int], GraphNode]) -> RecipeGraph:
    """The canonical graph under node ``root`` of a source graph, whose nodes ``source`` gives
    by key (:class:`Node` operands hold keys of the same source). Iterative, so chains of
    thousands of merges do not reach Python's recursion limit."""
    order: list[GraphNode] = []
    interned: dict[GraphNode, int] = {}
    done: dict[int, int] = {}
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        key, expanded = stack.pop()
        if key in done:
            continue
        node = source(key)
        if not expanded:
            stack.append((key, True))
            children = [op.index for op in operands(node) if isinstance(op, Node)]
            stack.extend((child, False) for child in reversed(children) if child not in done)
            continue
        final = _renumber(node, done.__getitem__)
        done[key] = interned.setdefault(final, len(order))
        if done[key] == len(order):
            order.append(final)
    return RecipeGraph(tuple(order))


def recipe_graph(recipe: Recipe, catalogue: Catalogue | None = None) -> RecipeGraph:
    """The canonical graph of a recipe; a recipe with errors raises :class:`MircError`."""
    errors = [d for d in check_recipe(recipe, catalogue) if d.is_error]
    if errors:
        raise MircError(errors)
    expressions = recipe.expressions
    nodes = [_graph_node(expression) for expression in expressions]
    return canonical(len(nodes) - 1, nodes.__getitem__)


def _operand(value: Value) -> Operand:
    if isinstance(value, Ref):
        return Node(value.index)
    if isinstance(value, Null):
        return Const("null", None)
    assert isinstance(value, Str | Int | Float | Bool)
    return const(value.value)


def _name(value: Value | None) -> str | None:
    return value.value if isinstance(value, Str) else None


def _graph_node(expression: Expression) -> GraphNode:
    if isinstance(expression, Merge):
        args = tuple(_operand(v) for v in expression.args)
        return MergeNode(expression.method.value, args, _pairs(expression))
    if isinstance(expression, Dict):
        return DictNode(_pairs(expression))
    if isinstance(expression, Model):
        binding = bind(MODEL_SIGNATURE, (expression.path, *expression.args), _keywords(expression))
        return ModelNode(expression.path.value, *_placement(binding))
    binding = bind(LITERAL_SIGNATURE, expression.args, _keywords(expression))
    config, space = _placement(binding)
    value = binding.value_of("value_dict")
    return LiteralNode(_operand(value) if value is not None else const(None), config, space)


def _placement(binding: Binding[Value]) -> tuple[str | None, str | None]:
    """The model config and merge space a ``model`` or ``literal`` line names."""
    return _name(binding.value_of("model_config")), _name(binding.value_of("merge_space"))


def _keywords(expression: Expression) -> list[tuple[str, Value]]:
    return [(k.name, k.value) for k in expression.kwargs]


def _pairs(expression: Expression) -> Pairs:
    return tuple((k.name, _operand(k.value)) for k in expression.kwargs)


def sd_mecha_form(graph: RecipeGraph, catalogue: Catalogue | None = None) -> RecipeGraph:
    """The graph ``sd_mecha.deserialize`` builds for a recipe with this graph.

    Merge methods that are sd-mecha interfaces (``exchange_ema``, ``rebasin`` …) are dispatched
    by sd-mecha to an implementation chosen by the arguments' model configs; they stay as is.
    """
    methods = (catalogue or load_catalogue()).methods
    built = dict(enumerate(graph.nodes))
    for index, node in enumerate(graph.nodes):
        if isinstance(node, ModelNode):
            built[index] = replace(node, path=str(PurePath(node.path)))
        elif isinstance(node, MergeNode) and node.method in methods:
            built[index] = _bound_merge(methods[node.method], node, built)
    return canonical(len(graph.nodes) - 1, built.__getitem__)


def _bound_merge(method: Method, node: MergeNode, built: dict[int, GraphNode]) -> MergeNode:
    """sd-mecha's ``MergeMethod.__call__``: bind, fill in defaults, turn values into nodes."""
    binding = bind(method, node.args, node.kwargs)
    if method.implementations or binding.problems:
        return node
    args: list[Operand] = []
    kwargs: list[tuple[str, Operand]] = []
    for param in method.params:
        if param.kind == "varargs":
            args.extend(_as_node(v, built) for p, v in binding.values if p is param)
            continue
        value = binding.value_of(param.name)
        wrapped = _as_node(const(param.default) if value is None else value, built)
        if param.kind == "keyword":
            kwargs.append((param.name, wrapped))
        else:
            args.append(wrapped)
    return MergeNode(node.method, tuple(args), tuple(kwargs))


def _as_node(operand: Operand, built: dict[int, GraphNode]) -> Operand:
    """sd-mecha's ``value_to_node``: a scalar becomes a singleton literal, a dict a literal."""
    if isinstance(operand, Node) and not isinstance(built[operand.index], DictNode):
        return operand
    if isinstance(operand, Node):
        return _add(built, LiteralNode(operand))
    content = _add(built, DictNode((("key", operand),)))
    literal = _add(built, LiteralNode(content, "singleton-mecha"))
    return _add(built, MergeNode("convert_singleton", (literal,)))


def _add(built: dict[int, GraphNode], node: GraphNode) -> Node:
    key = len(built)
    built[key] = node
    return Node(key)
