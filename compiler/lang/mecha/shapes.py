"""What an expression yields, as far as a check can tell before any tensor is read.

A :class:`Shape` is a value's kind (a recipe node, a plain dict, a scalar), its value type in
sd-mecha's terms, the merge spaces it may be in and its model config (``None``: not known).
The rules for fitting a shape to a parameter follow sd-mecha: numbers broadcast to tensors, a
type variable ``T`` takes anything, parameters sharing a merge-space symbol must agree on one
space, and model configs must match unless a conversion method links them.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.lang.mecha.catalogue import ANY_SPACE, Catalogue, Param

# How a parameter's value type is named in messages.
TAKES = {
    "Tensor": "a model, a merge result or a number",
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "str": "a string",
    "Generator": "a random generator",
    "dict": "a dict (a reference to a dict line)",
}
_SCALAR_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
}


@dataclass(frozen=True, slots=True)
class Shape:
    """A value's kind ("node", "dict" or "scalar"), value type, merge spaces and model config."""

    kind: str
    type: str
    spaces: frozenset[str] | None = None
    config: str | None = None
    label: str = ""

    def describe(self) -> str:
        """``a string``, ``&2 (a model)``, ``&4 (a dict of numbers)`` …"""
        if self.kind == "scalar":
            return _SCALAR_WORDS.get(self.type, self.type)
        if self.kind == "dict":
            return f"{self.label} (a dict of {_plural(self.type)})"
        return self.label


def _plural(value_type: str) -> str:
    words = {"int": "integers", "float": "numbers", "str": "strings", "bool": "booleans"}
    return words.get(value_type, f"{value_type} values")


def scalar(value_type: str) -> Shape:
    return Shape("scalar", value_type)


def spaces_of(spaces: frozenset[str]) -> frozenset[str] | None:
    """``None`` (unknown) for a set that allows every merge space."""
    return None if spaces >= ANY_SPACE else spaces


def accepts(param: Param, shape: Shape) -> bool:
    """Whether a value of ``shape`` fits ``param``'s value type (null is checked apart)."""
    wanted, given = param.type, shape.type
    if shape.kind == "dict" and wanted == "dict":
        return True
    if shape.kind == "dict" and wanted != "dict":
        return given in ("T", "null") or _type_fits(wanted, given)
    return wanted != "dict" and _type_fits(wanted, given)


def _type_fits(wanted: str, given: str) -> bool:
    if wanted == "T" or given == "T":
        return True
    if wanted == "Tensor":
        return given in ("Tensor", "float", "int")
    if wanted == "float":
        return given in ("float", "int")
    return wanted == given


def common_type(types: list[str]) -> str:
    """The one value type all of ``types`` share (``int`` widens to ``float``), else ``T``."""
    known = {t for t in types if t != "T"}
    if known == {"int", "float"}:
        return "float"
    return known.pop() if len(known) == 1 else "T"


def convertible(catalogue: Catalogue, source: str, target: str) -> bool:
    """Whether conversion methods lead from model config ``source`` to ``target``."""
    seen = {source}
    frontier = [source]
    while frontier:
        config = frontier.pop()
        if config == target:
            return True
        for following in catalogue.conversions_from(config):
            if following is None:
                return True
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return False


def compatible(catalogue: Catalogue, first: str, second: str) -> bool:
    """Whether two model configs can meet in one merge (equal, or one converts to the other)."""
    return (
        first == second
        or convertible(catalogue, first, second)
        or convertible(catalogue, second, first)
    )
