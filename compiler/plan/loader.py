"""Loader modules (DESIGN §1.2, §6): for one series, every value ``templates/loader.py.j2`` prints.

A series gets a loader module when one of its variants has a backend naming a diffusers
pipeline or a transformers class. The context is finished, sorted, plain data: per variant the
hub repo, the class, the scheduler (its class resolved from the ``ops`` spec the scheduler MIR
id names), the default generation arguments, whether diffusers reads the class from one
checkpoint file, the components, and where its inference parameters file is (relative to the
module): the planned settings per target, with their reasons, are read from there when a
pipeline is loaded, so ``generated/`` holds each decision once.
"""

from __future__ import annotations

import dataclasses
import functools
import keyword
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.ir import BASE, Backend, Series, Variant
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry, variant_key
from compiler.plan import params_path
from compiler.plan.model import PlannedFile

TEMPLATE = "loader.py.j2"
MODULE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,127}")  # the allow-list for generated module names
SINGLE_FILE_TABLE = Path(__file__).with_name("single_file_classes.txt")


def plan_loader(linked: LinkedRegistry, series: Series) -> PlannedFile | None:
    """The loader module of ``series``, or None when no variant loads with diffusers or
    transformers (ops entries, such as schedulers, never do: pipelines use them)."""
    if series.kind != "series":
        return None
    backends = {
        compat: backend
        for compat, variant in sorted(series.variants.items())
        if (backend := loader_backend(linked, variant)) is not None
    }
    if not backends:
        return None
    path = module_path(series.id)
    variants = {
        compat: _variant(linked, series.variants[compat], backend, posixpath.dirname(path))
        for compat, backend in backends.items()
    }
    context = {"series": {"id": str(series.id), "source": series.path}, "variants": variants}
    return PlannedFile(path, TEMPLATE, _sorted(context), series.path)


RUNTIME_TEMPLATE = "loader_runtime.py.j2"
RUNTIME_PATH = "loaders/runtime.py"


def plan_loader_runtime() -> PlannedFile:
    """The code every loader module shares (``loaders/runtime.py``); it holds no spec value."""
    return PlannedFile(RUNTIME_PATH, RUNTIME_TEMPLATE, {}, "")


def module_path(series: MirId) -> str:
    """``loaders/<arch>/<series>.py`` with names made identifiers: ``-`` becomes ``_``, a leading
    digit gets ``_`` before it and a keyword ``_`` after it (no other name can map there, as MIR
    names neither start nor end with ``-``)."""
    return f"loaders/{_module_name(series.arch)}/{_module_name(series.series)}.py"


def _module_name(name: str) -> str:
    text = name.replace("-", "_")
    if text[:1].isdigit():
        text = "_" + text
    if keyword.iskeyword(text):
        text += "_"
    if not MODULE_NAME.fullmatch(text):
        raise ValueError(f"{name!r} does not make a module name")
    return text


def loader_backend(linked: LinkedRegistry, variant: Variant) -> Backend | None:
    """The first backend of ``variant`` (settings-only ones completed from the base variant) that
    names a diffusers pipeline or a transformers class. Functions and pipeline methods such as
    ``load_lora_weights`` are lowercase and load nothing on their own; a diffusers model class
    (a UNet, a VAE) is a pipeline's component, not what a loader module builds."""
    for backend in effective_backends(linked, variant):
        name = backend.class_name or ""
        if backend.package == "transformers" and name[:1].isupper():
            return backend
        if backend.package == "diffusers" and name[:1].isupper() and "Pipeline" in name:
            return backend
    return None


def effective_backends(linked: LinkedRegistry, variant: Variant) -> tuple[Backend, ...]:
    """``variant``'s backends, each settings-only one merged into the base variant's backend at
    the same position (its generation, precision and scheduler win)."""
    base = linked.series_of(variant).variants.get(BASE)
    base_backends = base.backends if base is not None and base is not variant else ()
    merged = []
    for position, backend in enumerate(variant.backends):
        if backend.package is None and position < len(base_backends):
            backend = _settings_over(base_backends[position], backend)
        merged.append(backend)
    return tuple(merged)


def _settings_over(base: Backend, settings: Backend) -> Backend:
    return dataclasses.replace(
        base,
        generation={**base.generation, **settings.generation},
        precision=settings.precision or base.precision,
        scheduler=settings.scheduler or base.scheduler,
        scheduler_args=settings.scheduler_args or base.scheduler_args,
    )


def _variant(
    linked: LinkedRegistry, variant: Variant, backend: Backend, folder: str
) -> dict[str, Any]:
    package, class_name = str(backend.package), str(backend.class_name)
    return {
        "params": posixpath.relpath(params_path(variant.id), folder),
        "mir_id": str(variant.id),
        "name": variant.name,
        "repo": variant.repo,
        "package": package,
        "class": class_name,
        "denoiser": variant.denoiser,
        "scheduler": _scheduler(linked, backend),
        "generation": dict(backend.generation),
        "single_file": package == "diffusers" and class_name in single_file_classes(),
        "components": {
            role: str(linked.taxonomy.normalise(ref.target))
            for role, ref in sorted(variant.components.items())
        },
    }


def _scheduler(linked: LinkedRegistry, backend: Backend) -> dict[str, Any] | None:
    """The scheduler to swap in: the diffusers class of the ops variant the scheduler id names
    (None: keep the pipeline's own class) and keyword arguments over its saved configuration."""
    ops = None
    if backend.scheduler is not None:
        ops = linked.variants.get(variant_key(backend.scheduler.target, linked.taxonomy))
    chosen = _diffusers_class(ops) if ops is not None else None
    args = dict(chosen.args or {}) if chosen is not None else {}
    args.update(backend.scheduler_args or {})
    if chosen is None and not args:
        return None
    return {
        "mir_id": str(ops.id) if ops is not None else None,
        "package": "diffusers",
        "class": chosen.class_name if chosen is not None else None,
        "args": args,
    }


def _diffusers_class(ops: Variant) -> Backend | None:
    return next((b for b in ops.backends if b.package == "diffusers" and b.class_name), None)


def _sorted(value: Any) -> Any:
    """``value`` as plain data with every mapping's keys in sorted order (lists keep theirs)."""
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


@functools.cache
def single_file_classes() -> frozenset[str]:
    """The diffusers classes with ``from_single_file`` (``single_file_classes.txt``)."""
    lines = SINGLE_FILE_TABLE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))
