"""Write sd-mecha's builtin merge methods to ``compiler/lang/mecha/methods.json``.

mirc checks recipes against this catalogue at run time without importing sd-mecha (a test-only
dependency). Run this after upgrading sd-mecha; ``--check`` only compares, and
``tests/test_mecha_catalogue.py`` fails while the committed file and the installed sd-mecha
disagree::

    python3 tools/gen_mecha_catalogue.py [--check]

Every method that ``sd_mecha.extensions.merge_methods.get_all()`` lists is written, conversions
(``convert_singleton``, ``convert_'sdxl-sgm'_to_…``) included, with each parameter's kind, value
type, merge spaces, model config and default; and each model config's component names. A
method's ``**kwargs`` is left out: sd-mecha fills it at merge time (key, cache …) and a recipe
cannot set it.
"""

from __future__ import annotations

import inspect
import json
import sys
import typing
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from sd_mecha.extensions import merge_methods, merge_spaces, model_configs
from sd_mecha.extensions.merge_methods import MergeMethod, StateDict
from sd_mecha.extensions.merge_spaces import MergeSpace, MergeSpaceSymbol
from sd_mecha.serialization import MECHA_FORMAT_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run by path: the repository
from tools.datafile import write_or_check

TARGET = Path(__file__).resolve().parent.parent / "compiler" / "lang" / "mecha" / "methods.json"

TYPE_NAMES: dict[Any, str] = {
    torch.Tensor: "Tensor",
    float: "float",
    int: "int",
    bool: "bool",
    str: "str",
    torch.Generator: "Generator",
}
KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional_only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "varargs",
    inspect.Parameter.KEYWORD_ONLY: "keyword",
}


def value_type(interface: Any) -> dict[str, Any]:
    """``{"type": …, "state_dict": …}`` for a parameter's or a return's interface."""
    state_dict = interface is StateDict or typing.get_origin(interface) is StateDict
    if state_dict:
        interface = (typing.get_args(interface) or (typing.TypeVar("T"),))[0]
    if isinstance(interface, typing.TypeVar):
        return {"type": "T", "state_dict": state_dict}
    if interface not in TYPE_NAMES:
        raise TypeError(f"no catalogue name for sd-mecha type {interface!r}")
    return {"type": TYPE_NAMES[interface], "state_dict": state_dict}


def merge_space(space: Any, symbols: dict[int, str]) -> dict[str, Any]:
    """The allowed merge spaces and, for a space shared with other parameters, its symbol."""
    symbol = None
    if isinstance(space, MergeSpaceSymbol):
        symbol = symbols.setdefault(id(space), f"S{len(symbols) + 1}")
        space = space.merge_spaces
    elif isinstance(space, MergeSpace):
        space = {space}
    return {"merge_space": sorted(s.identifier for s in space), "space_symbol": symbol}


def config_name(config: Any) -> str | None:
    return None if config is None else str(config.identifier)


def default_value(default: Any) -> Any:
    if default is not None and not isinstance(default, (bool, int, float, str)):
        raise TypeError(f"default {default!r} cannot be written to the catalogue")
    return default


def describe_method(method: MergeMethod, conversions: set[str]) -> dict[str, Any]:
    signature = method.get_signature()
    spaces = method.get_input_merge_spaces()
    names = method.get_param_names()
    by_name = dict(zip(names.args, spaces.args, strict=True)) | dict(spaces.kwargs)
    if names.has_varargs():
        by_name[names.vararg] = spaces.vararg
    symbols: dict[int, str] = {}
    params = []
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        data = param.annotation.data
        entry = {"name": param.name, "kind": KINDS[param.kind], **value_type(data.interface)}
        entry |= merge_space(by_name[param.name], symbols)
        entry["model_config"] = config_name(data.model_config)
        if param.default is not inspect.Parameter.empty:
            entry["default"] = default_value(param.default)
        params.append(entry)
    returned = signature.return_annotation.data
    returns = value_type(returned.interface) | merge_space(returned.merge_space, symbols)
    returns["model_config"] = config_name(returned.model_config)
    interface = method.interface
    return {
        "conversion": method.identifier in conversions,
        "implementations": [c.identifier for c, _ in interface.candidates] if interface else [],
        "params": params,
        "returns": returns,
    }


def build_catalogue() -> dict[str, Any]:
    """The catalogue as the installed sd-mecha reports it."""
    conversions = {m.identifier for m in merge_methods.get_all_converters()}
    methods = {m.identifier: describe_method(m, conversions) for m in merge_methods.get_all()}
    return {
        "about": "sd-mecha's builtin merge methods, written by tools/gen_mecha_catalogue.py",
        "sd_mecha_version": version("sd-mecha"),
        "recipe_format_version": MECHA_FORMAT_VERSION,
        "merge_spaces": sorted(s.identifier for s in merge_spaces.get_all()),
        "model_configs": sorted(c.identifier for c in model_configs.get_all()),
        # what pick_component / omit_component may name, per model config
        "model_config_components": {
            c.identifier: list(c.components()) for c in model_configs.get_all()
        },
        "methods": methods,
    }


def render(catalogue: dict[str, Any]) -> str:
    return json.dumps(catalogue, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    return write_or_check(
        __doc__.splitlines()[0], TARGET, lambda: render(build_catalogue()), __file__
    )


if __name__ == "__main__":
    raise SystemExit(main())
