"""The architecture of a model from its pipeline or model class, by the MIR template.

``mir-template.json`` beside this module is a copy of the upstream MIR repository's
architecture template (darkshapes/MIR, LGPL-3.0; see ``shared/reference``). Its ``diffuser``
section says which ``__init__`` component of a diffusers pipeline puts it in which architecture
(``transformer`` → dit, ``unet``/``prior``/``decoder`` → unet …), its ``transformer`` section
which fields of a transformers configuration do; both are read in their written order, first
match wins. Architecture names normalise through the taxonomy (``artm`` → ``art``, ``mamba`` →
``ssm``). A configuration is built from its class defaults: no weights, no network.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from compiler.diagnostics import Diagnostic, MircError, Span, did_you_mean
from compiler.taxonomy import load_taxonomy

CLASS_FILE = "<--class>"
UNCLASSIFIED = "unclassified"
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Classification:
    """An architecture and where it came from (``default``, ``diffusers`` or ``transformers``)."""

    arch: str
    source: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"arch": self.arch, "from": self.source, "reason": self.reason}


DEFAULT = Classification(UNCLASSIFIED, "default", "no --class given")


@functools.cache
def load_template() -> Mapping[str, Mapping[str, Sequence[str]]]:
    """The ``diffuser`` and ``transformer`` sections of the shipped template."""
    text = resources.files("compiler.naming").joinpath("mir-template.json").read_text("utf-8")
    arch = json.loads(text)["arch"]
    return {"diffuser": arch["diffuser"], "transformer": arch["transformer"]}


def classify_class(class_name: str) -> Classification:
    """Classify a diffusers pipeline class or a transformers model/config class by name."""
    _check_identifier(class_name)
    libraries = ("diffusers", "transformers")
    if "Pipeline" not in class_name:
        libraries = ("transformers", "diffusers")
    for library in libraries:
        found = _lookup(library, class_name)
        if found is not None:
            if library == "diffusers":
                return _classify_pipeline(found, class_name)
            return _classify_transformers(found, class_name)
    known = [*_names("diffusers"), *_names("transformers")]
    message = f"no diffusers or transformers class named {class_name!r}"
    raise MircError([_error("class-unknown", message, class_name, did_you_mean(class_name, known))])


def _classify_pipeline(cls: type, class_name: str) -> Classification:
    if not _is_subclass(cls, "diffusers", "DiffusionPipeline"):
        message = f"diffusers.{class_name} is not a pipeline class"
        raise MircError([_error("class-kind", message, class_name)])
    components = set(inspect.signature(cls).parameters)
    for arch, names in load_template()["diffuser"].items():
        hit = next((name for name in names if name in components), None)
        if hit is not None:
            return Classification(_canonical(arch), "diffusers", f"pipeline component {hit!r}")
    return Classification(UNCLASSIFIED, "diffusers", "no component the template knows")


def _classify_transformers(cls: type, class_name: str) -> Classification:
    config_cls = cls if _is_subclass(cls, "transformers", "PretrainedConfig") else None
    config_cls = config_cls or getattr(cls, "config_class", None)
    if not isinstance(config_cls, type):
        message = f"transformers.{class_name} is not a model or configuration class"
        raise MircError([_error("class-kind", message, class_name)])
    fields = _config_fields(config_cls, class_name)
    for arch, names in load_template()["transformer"].items():
        hit = next((name for name in names if name in fields), None)
        if hit is not None:
            reason = f"configuration field {hit!r} ({config_cls.__name__})"
            return Classification(_canonical(arch), "transformers", reason)
    reason = f"no field of {config_cls.__name__} the template knows"
    return Classification(UNCLASSIFIED, "transformers", reason)


def _config_fields(config_cls: type, class_name: str) -> set[str]:
    """Fields a default configuration declares or sets beyond the base configuration's defaults."""
    from transformers import PretrainedConfig

    try:
        with _quiet():
            values = config_cls().to_dict()
    except Exception as exc:  # a third-party constructor: any failure is a finding, not a crash
        message = f"cannot build the default configuration {config_cls.__name__}: {exc}"
        raise MircError([_error("class-config", message, class_name)]) from None
    base = _base_config(PretrainedConfig)
    return {key for key, value in values.items() if key not in base or base[key] != value}


@functools.cache
def _base_config(config: type) -> dict[str, Any]:
    with _quiet():
        values: dict[str, Any] = config().to_dict()
    return values


def _canonical(arch: str) -> str:
    return load_taxonomy().canonical_arch(arch) or arch


def _check_identifier(class_name: str) -> None:
    if not _IDENTIFIER.fullmatch(class_name):
        message = "a class name is a Python identifier (letters, digits, '_'), like FluxPipeline"
        raise MircError([_error("class-name", message, class_name)])


def _error(code: str, message: str, class_name: str, notes: Sequence[str] = ()) -> Diagnostic:
    span = Span.at_offset(CLASS_FILE, class_name, 0, len(class_name))
    return Diagnostic.error(code, message, span, notes)


def _lookup(library: str, name: str) -> type | None:
    if name not in _names(library):
        return None
    with _quiet():
        found = getattr(_module(library), name, None)
    if not isinstance(found, type):
        return None
    if type(found).__name__ == "DummyObject":  # the libraries' stand-in for a missing backend
        backends = ", ".join(getattr(found, "_backends", ()))
        message = (
            f"{library}.{name} cannot be inspected here: it needs {backends}, not all installed"
        )
        raise MircError([_error("class-unavailable", message, name)])
    return found


@functools.cache
def _names(library: str) -> frozenset[str]:
    return frozenset(n for n in dir(_module(library)) if _IDENTIFIER.fullmatch(n))


def _module(library: str) -> Any:
    with _quiet():
        if library == "diffusers":
            import diffusers

            return diffusers
        import transformers

        return transformers


def _is_subclass(cls: type, library: str, base: str) -> bool:
    return issubclass(cls, getattr(_module(library), base))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the libraries' import-time warnings and log lines out of mirc's output."""
    from transformers.utils import logging as transformers_logging

    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        transformers_logging.set_verbosity(level)
