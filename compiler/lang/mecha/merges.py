"""Checking one ``merge`` line: argument types, merge spaces and model configs.

sd-mecha only finds most of these problems when it finalizes the graph or reads the first
tensor; here they are found from the catalogue alone. A parameter's merge space is either a fixed
set, or a symbol it shares with other parameters and often the return value: arguments bound to
one symbol must agree on a single space, and the result is in that space.
"""

from __future__ import annotations

from typing import Protocol

from compiler.diagnostics import DiagnosticSink, did_you_mean
from compiler.lang.mecha.ast import Str, Value
from compiler.lang.mecha.binding import Binding
from compiler.lang.mecha.catalogue import Catalogue, Method, Param
from compiler.lang.mecha.shapes import TAKES, Shape, accepts, common_type, compatible, spaces_of

Fitted = list[tuple[Param, Value, Shape]]
# methods whose ``component`` names a component of their input's model config
COMPONENT_METHODS = frozenset({"pick_component", "omit_component"})


class MergeContext(Protocol):
    """What checking a merge needs from the recipe checker."""

    catalogue: Catalogue
    sink: DiagnosticSink

    def shape_of(self, value: Value) -> Shape | None: ...


class _Clash:
    """Marks a merge space or model config that cannot be satisfied (already reported)."""


CLASH = _Clash()


def check_merge(context: MergeContext, binding: Binding[Value]) -> Shape | None:
    """The shape of a merge's result, or ``None`` (with diagnostics) if its arguments do not fit."""
    if binding.problems:
        return None
    method = binding.method
    fitted: Fitted = []
    ok = True
    for param, value in binding.values:
        shape = context.shape_of(value)
        if shape is None or not _fits(context, method, param, value, shape):
            ok = False
            continue
        fitted.append((param, value, shape))
    spaces = _merge_spaces(context, method, fitted)
    config = _model_config(context, method, fitted)
    if not ok or isinstance(spaces, _Clash) or isinstance(config, _Clash):
        return None
    return Shape("node", _return_type(method, fitted), spaces, config)


def check_component(context: MergeContext, binding: Binding[Value]) -> None:
    """The component a ``pick_component`` / ``omit_component`` names: one of its input's model
    config when that is known, else one that some model config has."""
    component, model = binding.value_of("component"), binding.value_of("a")
    if binding.problems or not isinstance(component, Str) or model is None:
        return
    shape = context.shape_of(model)
    config = shape.config if shape is not None else None
    by_config = context.catalogue.components
    if config is not None and config in by_config:
        known: tuple[str, ...] = by_config[config]
        message = f"model config {config} has no component '{component.value}'"
    else:
        known = tuple(sorted({name for names in by_config.values() for name in names}))
        message = f"no model config has a component '{component.value}'"
    if component.value in known:
        return
    notes = did_you_mean(component.value, known) or (f"known: {', '.join(known)}",)
    context.sink.error("recipe-component", message, component.span, *notes)


def _fits(context: MergeContext, method: Method, param: Param, value: Value, shape: Shape) -> bool:
    name = f"'{param.name}' of {method.identifier}"
    if shape.type == "null":  # sd-mecha's type variable T includes None
        if param.optional or param.type == "T":
            return True
        context.sink.error("recipe-type", f"{name} cannot be null", value.span)
        return False
    if accepts(param, shape):
        return True
    message = f"{name} takes {TAKES.get(param.type, param.type)}, not {shape.describe()}"
    context.sink.error("recipe-type", message, value.span)
    return False


def _merge_spaces(
    context: MergeContext, method: Method, fitted: Fitted
) -> frozenset[str] | _Clash | None:
    groups: dict[str, tuple[frozenset[str], Param | None, Shape | None]] = {}
    clash = False
    for param, value, shape in fitted:
        if shape.spaces is None:
            continue
        symbol = param.space_symbol
        if symbol is None:
            clash = not _space_fits(context, method, param, shape, value) or clash
            continue
        allowed, first_param, first = groups.get(symbol, (param.merge_spaces, None, None))
        joined = allowed & shape.spaces
        if not joined:
            _space_clash(context, method, (first_param, first), (param, shape), value)
            clash = True
            continue
        groups[symbol] = (joined, first_param or param, first or shape)
    if clash:
        return CLASH
    returns = method.returns
    if returns.space_symbol is not None and returns.space_symbol in groups:
        return spaces_of(groups[returns.space_symbol][0])
    return spaces_of(returns.merge_spaces)


def _space_fits(
    context: MergeContext, method: Method, param: Param, shape: Shape, value: Value
) -> bool:
    assert shape.spaces is not None
    if shape.spaces & param.merge_spaces:
        return True
    message = (
        f"merge space mismatch: '{param.name}' of {method.identifier} takes "
        f"{_words(param.merge_spaces)}, but {shape.describe()} is in {_words(shape.spaces)} space"
    )
    notes = []
    if param.merge_spaces == {"delta"} and "weight" in shape.spaces:
        notes.append('a delta is a difference of two models: merge "subtract" &A &B')
    context.sink.error("recipe-merge-space", message, value.span, *notes)
    return False


def _space_clash(
    context: MergeContext,
    method: Method,
    first: tuple[Param | None, Shape | None],
    second: tuple[Param, Shape],
    value: Value,
) -> None:
    (first_param, first_shape), (param, shape) = first, second
    assert shape.spaces is not None
    if first_param is None or first_shape is None or first_shape.spaces is None:
        _space_fits(context, method, param, shape, value)
        return
    message = (
        f"merge space mismatch: {method.identifier} takes '{first_param.name}' and "
        f"'{param.name}' in one merge space, but {first_shape.describe()} is in "
        f"{_words(first_shape.spaces)} space and {shape.describe()} in {_words(shape.spaces)} space"
    )
    context.sink.error("recipe-merge-space", message, value.span)


def _model_config(context: MergeContext, method: Method, fitted: Fitted) -> str | _Clash | None:
    """The result's model config; arguments must fit their parameter's config or one another's."""
    catalogue = context.catalogue
    common: Shape | None = None
    clash = False
    for param, value, shape in fitted:
        if shape.config is None:
            continue
        wanted = param.model_config or (common.config if common is not None else None)
        if wanted is None:
            common = shape
        elif not compatible(catalogue, shape.config, wanted):
            _config_clash(context, method, param, common, (value, shape))
            clash = True
    if clash:
        return CLASH
    return method.returns.model_config or (common.config if common is not None else None)


def _config_clash(
    context: MergeContext,
    method: Method,
    param: Param,
    common: Shape | None,
    given: tuple[Value, Shape],
) -> None:
    value, shape = given
    if param.model_config is not None or common is None:
        message = (
            f"'{param.name}' of {method.identifier} takes a {param.model_config} model, "
            f"but {shape.describe()} is {shape.config}"
        )
        context.sink.error("recipe-model-config", message, value.span)
        return
    message = (
        f"model config mismatch in {method.identifier}: {common.describe()} is "
        f"{common.config} but {shape.describe()} is {shape.config}"
    )
    context.sink.error("recipe-model-config", message, value.span, "no conversion links them")


def _return_type(method: Method, fitted: Fitted) -> str:
    if method.returns.type != "T":
        return method.returns.type
    return common_type([shape.type for param, _, shape in fitted if param.type == "T"])


def _words(spaces: frozenset[str]) -> str:
    return " or ".join(sorted(spaces))
