"""Checking a parsed recipe before any tensor is read.

:func:`check_recipe` returns every problem it finds: references that do not point to an earlier
expression, unknown merge methods ("did you mean"), arguments that do not fit a method's
parameters (count, names, duplicates), values of the wrong type, merge spaces that cannot meet,
model configs that cannot meet, unknown model configs and merge spaces, malformed MIR ids, and,
as warnings, expressions nothing uses and strings sd-mecha 1.1.8 would misread.

A ``model`` path that starts with ``mir:`` is a MIR id. Its syntax is checked here; resolving it
to a file is the registry's job, plugged in as ``resolver``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic, DiagnosticSink, MircError, Span, did_you_mean
from compiler.gcpause import paused_gc
from compiler.lang.mecha.ast import (
    Bool,
    Dict,
    Expression,
    Float,
    Int,
    Keyword,
    Literal,
    Merge,
    Model,
    Null,
    Pos,
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
from compiler.lang.mecha.merges import COMPONENT_METHODS, check_component, check_merge
from compiler.lang.mecha.shapes import Shape, common_type, scalar
from compiler.lang.mir import MirId, parse_mir


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """What a registry knows about a MIR id: the file to merge and its sd-mecha model config."""

    path: str
    model_config: str | None = None


MirResolver = Callable[[MirId], ResolvedModel | None]

_SCALAR_TYPES: dict[type, str] = {
    Str: "str",
    Int: "int",
    Float: "float",
    Bool: "bool",
    Null: "null",
}


def check_recipe(
    recipe: Recipe, catalogue: Catalogue | None = None, resolver: MirResolver | None = None
) -> list[Diagnostic]:
    """Every problem in ``recipe``: the errors in line order, then the warnings (which do not
    reject it) in line order."""
    checker = _Checker(recipe, catalogue or load_catalogue(), resolver)
    with paused_gc():
        checker.run()
    return sorted(checker.sink.items, key=_errors_first)


def _errors_first(diagnostic: Diagnostic) -> tuple[bool, int, int]:
    span = diagnostic.span
    place = (span.line, span.col) if span is not None else (0, 0)
    return (not diagnostic.is_error, *place)


class _Checker:
    def __init__(self, recipe: Recipe, catalogue: Catalogue, resolver: MirResolver | None):
        self.recipe = recipe
        self.expressions = recipe.expressions
        self.catalogue = catalogue
        self.resolver = resolver
        self.sink = DiagnosticSink()
        self.shapes: list[Shape | None] = []
        self.used: set[int] = set()

    def run(self) -> None:
        for index, expression in enumerate(self.expressions):
            refs_ok = self._references(index, expression)
            shape = self._expression(expression) if refs_ok else None
            if shape is not None:
                label = f"&{index}" if shape.kind == "dict" else f"&{index} ({_what(expression)})"
                shape = Shape(shape.kind, shape.type, shape.spaces, shape.config, label)
            self.shapes.append(shape)
            self._positional_equals(expression)
        self._unused()

    def _references(self, index: int, expression: Expression) -> bool:
        ok = True
        for value in _values(expression):
            if isinstance(value, Ref):
                ok = self._reference(index, value) and ok
        return ok

    def _reference(self, index: int, ref: Ref) -> bool:
        if ref.index < index:
            self.used.add(ref.index)
            return True
        count = len(self.expressions)
        if ref.index == index:
            message = f"&{ref.index} refers to its own line; references point to earlier lines"
        elif ref.index < count:
            message = f"&{ref.index} refers to a later line; references point to earlier lines"
        else:
            last = f"&0 … &{count - 1}" if count > 1 else "&0"
            message = f"&{ref.index} is out of range; the recipe's expressions are {last}"
        self.sink.error("recipe-reference", message, ref.span)
        return False

    def shape_of(self, value: Value) -> Shape | None:
        """The shape of an argument; ``None`` when its expression was itself rejected."""
        if isinstance(value, Ref):
            return self.shapes[value.index]
        return scalar(_SCALAR_TYPES[type(value)])

    def _expression(self, expression: Expression) -> Shape | None:
        if isinstance(expression, Model):
            return self._model(expression)
        if isinstance(expression, Literal):
            return self._literal(expression)
        if isinstance(expression, Dict):
            return self._dict(expression)
        method = self.catalogue.methods.get(expression.method.value)
        if method is None:
            self._unknown_method(expression)
            return None
        binding = self.bind(method, expression.method.pos, expression.args, expression.kwargs)
        if method.identifier in COMPONENT_METHODS:
            check_component(self, binding)
        return check_merge(self, binding)

    def _unknown_method(self, merge: Merge) -> None:
        name = merge.method.value
        notes = did_you_mean(name, self.catalogue.methods)
        message = f"unknown merge method '{name}'"
        self.sink.error("recipe-method", message, merge.method.span, *notes)

    def bind(
        self, method: Method, pos: Pos, args: Sequence[Value], kwargs: Sequence[Keyword]
    ) -> Binding[Value]:
        """Bind arguments, reporting what does not fit at the argument (or at ``pos``)."""
        binding = bind(method, args, [(k.name, k.value) for k in kwargs])
        for problem in binding.problems:
            where = pos
            if problem.index is not None:
                where = args[problem.index].pos
            elif problem.name is not None:
                where = next(k.pos for k in kwargs if k.name == problem.name)
            self.sink.error("recipe-arguments", problem.message, where.span, *problem.notes)
        return binding

    def _model(self, model: Model) -> Shape:
        args = (model.path, *model.args)
        binding = self.bind(MODEL_SIGNATURE, model.pos, args, model.kwargs)
        config = self._config(binding)
        spaces = self._space(binding)
        if model.path.value.startswith("mir:"):
            config = self._mir_model(model.path, config)
        return Shape("node", "Tensor", spaces, config)

    def _config(self, binding: Binding[Value]) -> str | None:
        value = binding.value_of("model_config")
        return self._name_in(value, "model config", self.catalogue.model_configs)

    def _space(self, binding: Binding[Value]) -> frozenset[str] | None:
        value = binding.value_of("merge_space")
        name = self._name_in(value, "merge space", self.catalogue.merge_spaces)
        return None if name is None else frozenset({name})

    def _name_in(self, value: Value | None, what: str, known: Sequence[str]) -> str | None:
        if value is None or isinstance(value, Null):
            return None
        if not isinstance(value, Str):
            self.sink.error("recipe-type", f"a {what} is a string or null", value.span)
            return None
        if value.value not in known:
            notes = did_you_mean(value.value, known) or (f"known: {', '.join(known)}",)
            self.sink.error("recipe-name", f"unknown {what} '{value.value}'", value.span, *notes)
            return None
        return value.value

    def _mir_model(self, path: Str, config: str | None) -> str | None:
        try:
            mir = parse_mir(path.value, path.pos.line.file)
        except MircError as exc:
            for diagnostic in exc.diagnostics:
                self.sink.add(_within_string(diagnostic, path))
            return config
        if self.resolver is None:
            return config
        resolved = self.resolver(mir)
        if resolved is None:
            message = f"no model in the registry has the id {mir}"
            self.sink.error("recipe-mir", message, path.span)
            return config
        return config or resolved.model_config

    def _literal(self, literal: Literal) -> Shape | None:
        binding = self.bind(LITERAL_SIGNATURE, literal.pos, literal.args, literal.kwargs)
        value = binding.value_of("value_dict")
        config, spaces = self._config(binding), self._space(binding)
        content = None if value is None else self.shape_of(value)
        if value is not None and content is not None and content.kind != "dict":
            message = f"literal takes a dict (a reference to a dict line), not {content.describe()}"
            self.sink.error("recipe-type", message, value.span)
            return None
        value_type = content.type if content is not None else "T"
        return Shape("node", value_type, spaces, config)

    def _dict(self, mapping: Dict) -> Shape | None:
        shapes: list[tuple[Keyword, Shape]] = []
        for keyword in mapping.kwargs:
            shape = self.shape_of(keyword.value)
            if shape is not None and shape.kind == "dict":
                message = f"a dict cannot hold a dict ('{keyword.name}' is {shape.describe()})"
                self.sink.error("recipe-type", message, keyword.value.span)
                return None
            if shape is not None:
                shapes.append((keyword, shape))
        return self._dict_shape(shapes)

    def _dict_shape(self, shapes: list[tuple[Keyword, Shape]]) -> Shape | None:
        groups = {_value_class(shape) for _, shape in shapes}
        if len(groups) > 1:
            first_key, first = shapes[0]
            key, other = next((k, s) for k, s in shapes if _value_class(s) != _value_class(first))
            message = (
                f"a dict's values must be of one kind: '{first_key.name}' is "
                f"{first.describe()} but '{key.name}' is {other.describe()}"
            )
            self.sink.error("recipe-type", message, key.value.span)
            return None
        nodes = [(key, shape) for key, shape in shapes if shape.kind == "node"]
        spaces = [(key, shape.spaces) for key, shape in nodes if shape.spaces is not None]
        configs = [(key, shape.config) for key, shape in nodes if shape.config is not None]
        if not (self._agree(spaces, "merge space") and self._agree(configs, "model config")):
            return None
        value_type = common_type([shape.type for _, shape in shapes])
        space = spaces[0][1] if spaces else None
        return Shape("dict", value_type, space, configs[0][1] if configs else None)

    def _agree(self, known: Sequence[tuple[Keyword, object]], what: str) -> bool:
        """sd-mecha requires a dict's recipe values to share one merge space and model config."""
        for key, found in known[1:]:
            if found != known[0][1]:
                message = (
                    f"a dict's recipe values must share one {what}: "
                    f"'{known[0][0].name}' and '{key.name}' differ"
                )
                self.sink.error("recipe-type", message, key.value.span)
                return False
        return True

    def _positional_equals(self, expression: Expression) -> None:
        """sd-mecha 1.1.8 splits any argument containing '=' as key=value, even a quoted one."""
        head = expression.path if isinstance(expression, Model) else None
        for value in (head, *expression.args):
            if isinstance(value, Str) and "=" in value.value:
                message = "sd-mecha 1.1.8 cannot read '=' inside a positional string"
                note = "it splits the argument at '=' and fails; rename the file or pass key=value"
                self.sink.warning("recipe-sd-mecha", message, value.span, note)

    def _unused(self) -> None:
        for index, expression in enumerate(self.expressions[:-1]):
            if index not in self.used:
                message = f"&{index} is never used; only the last expression is the output"
                self.sink.warning("recipe-unused", message, expression.span)


def _what(expression: Expression) -> str:
    if isinstance(expression, Merge):
        return f"the result of {expression.method.value}"
    return "a model" if isinstance(expression, Model) else "a literal"


def _values(expression: Expression) -> list[Value]:
    return [*expression.args, *(k.value for k in expression.kwargs)]


def _value_class(shape: Shape) -> str:
    """sd-mecha's dict consistency classes: numbers, strings, booleans, null, recipe nodes."""
    if shape.kind == "node":
        return "node"
    return "number" if shape.type in ("int", "float") else shape.type


def _within_string(diagnostic: Diagnostic, string: Str) -> Diagnostic:
    """A MIR id diagnostic (columns within the id) moved to its place in the recipe line."""
    inner = diagnostic.span
    outer = string.span
    col = outer.col + 1 + (inner.col - 1 if inner is not None else 0)
    width = 1 if inner is None or inner.end_col is None else inner.end_col - inner.col
    span = Span(outer.file, outer.line, col, outer.line, col + width, outer.source_line)
    return Diagnostic(diagnostic.severity, diagnostic.code, diagnostic.message, span)
