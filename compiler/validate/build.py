"""Schema-valid spec documents → the typed values of :mod:`compiler.ir`.

These functions run only on documents the schema accepted, so they read fields directly; the
one thing they still check is each MIR reference's syntax (positioned in the YAML file).
"""

from __future__ import annotations

from typing import Any

from compiler.diagnostics import MircError
from compiler.ir import (
    Backend,
    Dimensions,
    FileHash,
    Fingerprint,
    LayerRule,
    LoraSettings,
    Reference,
    Series,
    Target,
    Training,
    Variant,
)
from compiler.lang.mir import MirId
from compiler.lang.mmpretrain import parse_training
from compiler.load import SpecFile
from compiler.validate.rules import mir_at
from compiler.validate.schema import shift_into
from compiler.yamlfile import NodePath


class _Refs:
    """Collects the MIR references of one spec, with every syntax error in it."""

    def __init__(self, spec: SpecFile) -> None:
        self.spec = spec
        self.errors: list[MircError] = []

    def at(self, path: NodePath, role: str) -> Reference | None:
        try:
            return Reference(mir_at(self.spec, path), role, self.spec.document.span(path))
        except MircError as exc:
            self.errors.append(exc)
            return None

    def optional(self, body: dict[str, Any], path: NodePath, key: str) -> Reference | None:
        return self.at((*path, key), key) if key in body else None

    def raise_errors(self) -> None:
        if self.errors:
            raise MircError([d for e in self.errors for d in e.diagnostics])


def build_series(spec: SpecFile, mir: MirId) -> Series:
    """The :class:`Series` of a series or ops spec."""
    value = spec.document.value
    refs = _Refs(spec)
    variants = {
        compat: _variant(refs, mir.with_compat(compat), ("variants", compat), body)
        for compat, body in value["variants"].items()
    }
    refs.raise_errors()
    return Series(
        id=mir,
        kind=value["kind"],
        path=spec.rel,
        span=spec.document.span(("id",)),
        variants=variants,
        name=value.get("name"),
        description=value.get("description"),
        links=dict(value.get("links", {})),
    )


def _variant(refs: _Refs, mir: MirId, path: NodePath, body: dict[str, Any]) -> Variant:
    components = {
        role: refs.at((*path, "components", role), f"components.{role}")
        for role in body.get("components", {})
    }
    hashes = body.get("hashes", {})
    training = body.get("training")
    return Variant(
        id=mir,
        compat=mir.compat or "base",
        span=refs.spec.document.span(path, key=True),
        name=body.get("name"),
        description=body.get("description"),
        repo=body.get("repo"),
        backends=tuple(
            _backend(refs, (*path, "backends", i), b)
            for i, b in enumerate(body.get("backends", ()))
        ),
        denoiser=body.get("denoiser"),
        components={k: v for k, v in components.items() if v is not None},
        base_model=refs.optional(body, path, "base_model"),
        objective=body.get("objective"),
        parameters=body.get("parameters"),
        dimensions=Dimensions(**body.get("dimensions", {})),
        file_hashes=tuple(_file_hash(h) for h in hashes.get("file_256", ())),
        layer_hashes=tuple(hashes.get("layer_256", ())),
        fingerprints=tuple(_fingerprint(f) for f in body.get("fingerprints", ())),
        training=_training(refs, (*path, "training"), training) if training is not None else None,
        license=body.get("license"),
        upstream=dict(body.get("upstream", {})),
        dtype=body.get("dtype"),
    )


def _backend(refs: _Refs, path: NodePath, body: dict[str, Any]) -> Backend:
    return Backend(
        package=body.get("package"),
        class_name=body.get("class"),
        args=dict(body["args"]) if "args" in body else None,
        generation=dict(body.get("generation", {})),
        precision=refs.optional(body, path, "precision"),
        scheduler=refs.optional(body, path, "scheduler"),
        scheduler_args=body.get("scheduler_args"),
        extra=dict(body.get("extra", {})),
    )


def _file_hash(entry: str | dict[str, Any]) -> FileHash:
    if isinstance(entry, str):
        return FileHash(entry)
    return FileHash(entry["sha256"], dict(entry.get("generation", {})))


def _fingerprint(body: dict[str, Any]) -> Fingerprint:
    return Fingerprint(
        format=body["format"],
        required={k: tuple(v) for k, v in body["required"].items()},
        optional={k: tuple(v) for k, v in body.get("optional", {}).items()},
        forbidden=tuple(body.get("forbidden", ())),
        component=body.get("component"),
        tensors=body.get("tensors"),
        parameters=body.get("parameters"),
        blocks={k: tuple(v) for k, v in body.get("blocks", {}).items()},
        components={k: tuple(v) for k, v in body.get("components", {}).items()},
    )


# MMPretrain schedule words → the spec's lr_schedule values.
SCHEDULES = {"coslr": "cosine", "linearlr": "linear", "steplr": "step", "multisteplr": "step"}


def _descriptor_fields(refs: _Refs, path: NodePath, body: dict[str, Any]) -> dict[str, Any]:
    """The fields an MMPretrain shorthand (``8xb4-amp-coslr-10e``) stands for."""
    text = body.get("descriptor")
    if text is None:
        return {}
    try:
        info = parse_training(text, refs.spec.document.file)
    except MircError as exc:
        span = refs.spec.document.span((*path, "descriptor"))
        refs.errors.append(MircError([shift_into(d, span) for d in exc.diagnostics]))
        return {}
    expanded = {
        "gpus": info.gpus,
        "batch_size": info.total_batch,
        "mixed_precision": info.amp,
        "lr_schedule": SCHEDULES.get(info.schedule or ""),
        "epochs": info.epochs,
        "max_steps": info.iterations,
    }
    return {k: v for k, v in expanded.items() if v is not None}


def _training(refs: _Refs, path: NodePath, written: dict[str, Any]) -> Training:
    """The training section; fields written in the spec win over its descriptor's."""
    body = {**_descriptor_fields(refs, path, written), **written}
    lora = body.get("lora", {})
    return Training(
        methods=tuple(body.get("methods", ("lora",))),
        descriptor=body.get("descriptor"),
        resolution=body.get("resolution"),
        batch_size=body.get("batch_size"),
        gpus=body.get("gpus"),
        learning_rate=body.get("learning_rate"),
        optimizer=body.get("optimizer", "adamw"),
        lr_schedule=body.get("lr_schedule", "constant"),
        warmup_steps=body.get("warmup_steps", 0),
        epochs=body.get("epochs"),
        max_steps=body.get("max_steps"),
        mixed_precision=body.get("mixed_precision", True),
        noise_offset=body.get("noise_offset", 0.0),
        caption_dropout=body.get("caption_dropout", 0.0),
        lora=LoraSettings(
            rank=lora.get("rank", 16),
            alpha=lora.get("alpha", float(lora.get("rank", 16))),
            dropout=lora.get("dropout", 0.0),
            target_modules=tuple(lora.get("target_modules", ())),
        ),
        layers=tuple(
            LayerRule(r.get("match"), r.get("block"), r.get("lr_scale"), r.get("freeze", False))
            for r in body.get("layers", ())
        ),
    )


def build_target(spec: SpecFile) -> Target:
    """The :class:`Target` of a target spec."""
    value = spec.document.value
    return Target(
        id=value["id"],
        path=spec.rel,
        span=spec.document.span(("id",)),
        name=value["name"],
        device=value["device"],
        memory_gib=value["memory_gib"],
        dtypes=tuple(value["dtypes"]),
        attention=tuple(value["attention"]),
        devices_per_node=value["devices_per_node"],
        nodes=value["nodes"],
        vendor=value.get("vendor", "generic"),
        compute_capability=value.get("compute_capability"),
        architecture=value.get("architecture"),
        memory_bandwidth_gbs=value.get("memory_bandwidth_gbs"),
        host_memory_gib=value.get("host_memory_gib"),
        tflops=dict(value.get("tflops", {})),
        interconnect=dict(value.get("interconnect", {})),
        device_target=value.get("device_target"),
        source=value.get("source"),
    )
