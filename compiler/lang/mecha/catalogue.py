"""sd-mecha's builtin merge methods, read from ``methods.json`` (package data).

The catalogue is data written by ``tools/gen_mecha_catalogue.py`` from the installed sd-mecha; a
test keeps it equal to what sd-mecha reports. mirc never imports sd-mecha at run time.

Besides the merge methods, the ``model`` and ``literal`` commands have signatures too (their
sd-mecha constructors'), so one binder checks the arguments of every command.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

ANY_SPACE = frozenset({"delta", "param", "weight"})
ParamDefault = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a merge method (or of ``model`` / ``literal``)."""

    name: str
    kind: str  # "positional", "positional_only", "varargs" or "keyword"
    # "Tensor", "float", "int", "bool", "str" or "Generator"; "T" is sd-mecha's type variable
    # (any of them); "dict" only for the first argument of ``literal``
    type: str
    merge_spaces: frozenset[str]
    space_symbol: str | None = None
    model_config: str | None = None
    has_default: bool = False
    default: ParamDefault = None
    state_dict: bool = False

    @property
    def optional(self) -> bool:
        """Whether ``null`` is an accepted value (its default is null)."""
        return self.has_default and self.default is None


@dataclass(frozen=True, slots=True)
class Returns:
    type: str
    merge_spaces: frozenset[str]
    space_symbol: str | None = None
    model_config: str | None = None


@dataclass(frozen=True)
class Method:
    """A merge method's signature as sd-mecha declares it."""

    identifier: str
    params: tuple[Param, ...]
    returns: Returns
    conversion: bool = False
    implementations: tuple[str, ...] = ()

    # Derived views, computed once: checking a recipe binds arguments on every merge line.
    @functools.cached_property
    def by_name(self) -> Mapping[str, Param]:
        return {p.name: p for p in self.params if p.kind != "varargs"}

    @functools.cached_property
    def positional(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.kind in ("positional", "positional_only"))

    @functools.cached_property
    def varargs(self) -> Param | None:
        return next((p for p in self.params if p.kind == "varargs"), None)

    @functools.cached_property
    def required(self) -> tuple[Param, ...]:
        """The parameters a call must give (no default, not ``*varargs``)."""
        return tuple(p for p in self.params if p.kind != "varargs" and not p.has_default)


@dataclass(frozen=True, slots=True)
class Catalogue:
    sd_mecha_version: str
    recipe_format_version: str
    merge_spaces: tuple[str, ...]
    model_configs: tuple[str, ...]
    methods: Mapping[str, Method]
    # each model config's components (``clip_l``, ``vae`` …), what pick_component names
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def conversions_from(self, config: str) -> tuple[str | None, ...]:
        """The model configs a conversion method turns ``config`` into (None: any)."""
        return tuple(
            m.returns.model_config
            for m in self.methods.values()
            if m.conversion and m.params and m.params[0].model_config == config
        )


def _param(entry: Mapping[str, Any]) -> Param:
    return Param(
        name=entry["name"],
        kind=entry["kind"],
        type=entry["type"],
        merge_spaces=frozenset(entry["merge_space"]),
        space_symbol=entry["space_symbol"],
        model_config=entry["model_config"],
        has_default="default" in entry,
        default=entry.get("default"),
        state_dict=entry["state_dict"],
    )


def _method(identifier: str, entry: Mapping[str, Any]) -> Method:
    returns = entry["returns"]
    return Method(
        identifier=identifier,
        params=tuple(_param(p) for p in entry["params"]),
        returns=Returns(
            returns["type"],
            frozenset(returns["merge_space"]),
            returns["space_symbol"],
            returns["model_config"],
        ),
        conversion=entry["conversion"],
        implementations=tuple(entry["implementations"]),
    )


def catalogue_from_json(document: Mapping[str, Any]) -> Catalogue:
    """A catalogue from the parsed ``methods.json`` document."""
    return Catalogue(
        sd_mecha_version=document["sd_mecha_version"],
        recipe_format_version=document["recipe_format_version"],
        merge_spaces=tuple(document["merge_spaces"]),
        model_configs=tuple(document["model_configs"]),
        methods={name: _method(name, entry) for name, entry in document["methods"].items()},
        components={
            config: tuple(names)
            for config, names in document.get("model_config_components", {}).items()
        },
    )


@functools.cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with mirc (read once per process)."""
    text = resources.files("compiler.lang.mecha").joinpath("methods.json").read_text("utf-8")
    return catalogue_from_json(json.loads(text))


def _builtin(name: str, first: Param) -> Method:
    """``model`` and ``literal``: sd-mecha's node constructors, as signatures."""
    config = Param("model_config", "positional", "str", ANY_SPACE, has_default=True)
    space = Param("merge_space", "positional", "str", ANY_SPACE, has_default=True)
    return Method(name, (first, config, space), Returns("T", ANY_SPACE))


MODEL_SIGNATURE = _builtin("model", Param("path", "positional", "str", ANY_SPACE))
LITERAL_SIGNATURE = _builtin("literal", Param("value_dict", "positional", "dict", ANY_SPACE))
