"""sd-mecha's own recipe objects as mirc graphs (sd-mecha is a test dependency only)."""

from __future__ import annotations

from typing import Any

import sd_mecha
from sd_mecha.recipe_nodes import LiteralRecipeNode, MergeRecipeNode, ModelRecipeNode, RecipeNode

from compiler.lang.mecha.graph import (
    DictNode,
    GraphNode,
    LiteralNode,
    MergeNode,
    ModelNode,
    Node,
    Operand,
    RecipeGraph,
    canonical,
    const,
)


def identifier(thing: Any) -> str | None:
    return None if thing is None else str(thing.identifier)


class _Walker:
    """Numbers every RecipeNode (and every dict inside a literal) and describes it as mirc does."""

    def __init__(self) -> None:
        self.keys: dict[int, int] = {}
        self.nodes: dict[int, GraphNode] = {}
        self.keep: list[Any] = []  # keep walked objects alive so their ids stay unique

    def key(self, node: RecipeNode) -> int:
        if id(node) not in self.keys:
            self.keep.append(node)
            self.keys[id(node)] = len(self.keys)
            self.nodes[self.keys[id(node)]] = self.describe(node)
        return self.keys[id(node)]

    def operand(self, value: Any) -> Operand:
        if isinstance(value, RecipeNode):
            return Node(self.key(value))
        return const(value)

    def describe(self, node: RecipeNode) -> GraphNode:
        config, space = identifier(node.model_config), identifier(node.merge_space)
        if isinstance(node, ModelRecipeNode):
            return ModelNode(str(node.path), config, space)
        if isinstance(node, LiteralRecipeNode):
            items = tuple((k, self.operand(v)) for k, v in node.value_dict.items())
            content = len(self.keys) + 100_000_000  # a key no RecipeNode gets
            self.keys[content] = content
            self.nodes[content] = DictNode(items)
            return LiteralNode(Node(content), config, space)
        assert isinstance(node, MergeRecipeNode)
        args = tuple(self.operand(v) for v in node.bound_args.args)
        kwargs = tuple((k, self.operand(v)) for k, v in node.bound_args.kwargs.items())
        return MergeNode(node.merge_method.identifier, args, kwargs)


def sd_mecha_graph(root: RecipeNode | dict[str, Any]) -> RecipeGraph:
    """The canonical mirc graph of an sd-mecha recipe (or of the dict a recipe can end with)."""
    walker = _Walker()
    if isinstance(root, dict):
        walker.nodes[-1] = DictNode(tuple((k, walker.operand(v)) for k, v in root.items()))
        return canonical(-1, walker.nodes.__getitem__)
    return canonical(walker.key(root), walker.nodes.__getitem__)


def deserialized_graph(text: str) -> RecipeGraph:
    """What ``sd_mecha.deserialize`` makes of ``text``, as a mirc graph."""
    return sd_mecha_graph(sd_mecha.deserialize(text))
