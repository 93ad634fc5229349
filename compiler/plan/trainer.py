"""Training scripts: per series and target, the finished values ``templates/train.py.j2`` prints.

One script per target covers every variant of the series that has a training section and a
pipeline the script knows how to condition (``--variant`` picks one); a target with more than one
device also gets a launch file with the torchrun command. Everything the script needs is decided
here and handed over as plain data (dicts, lists, str, int, float, bool, None): hyperparameters,
the per-target decisions with their reasons, aspect-ratio buckets, per-layer rules as name globs,
and the SAI ModelSpec metadata of the weights the script writes. The script itself is short: its
SPEC and a call into the code every script shares, ``training/runtime.py``
(``templates/train_runtime.py.j2``, :func:`plan_training_runtime`), rendered once per build.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.ir import BASE, LayerRule, Series, Target, Variant
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry
from compiler.plan import VariantPlan
from compiler.plan.model import Decision, PlannedFile, TrainingPlan


@dataclass(frozen=True)
class Family:
    """How the script drives one kind of pipeline: its text conditioning, the component it
    trains and the modules LoRA adapts by default."""

    conditioning: str  # "clip" (one CLIP encoder) or "clip-sdxl" (two, pooled, time ids)
    denoiser: str
    lora_targets: tuple[str, ...]


ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
FAMILIES = {
    "StableDiffusionPipeline": Family("clip", "unet", ATTENTION_PROJECTIONS),
    "StableDiffusionXLPipeline": Family("clip-sdxl", "unet", ATTENTION_PROJECTIONS),
}
# SAI ModelSpec architecture names (github.com/Stability-AI/ModelSpec) of the series that have one.
MODELSPEC_ARCHITECTURES = {
    "mir:info.unet.stable-diffusion-v1": "stable-diffusion-v1",
    "mir:info.unet.stable-diffusion-xl": "stable-diffusion-xl-v1-base",
}
PREDICTION_TYPES = {
    "epsilon": "epsilon",
    "v-prediction": "v",
    "flow-matching": "flow",
    "sample": "sample",
}
DEFAULT_LEARNING_RATES = {"lora": 1e-4, "full": 1e-5}
DEFAULT_EPOCHS = 10
# diffusers.optimization.get_scheduler names of the spec's schedules.
SCHEDULES = {"cosine": "cosine", "linear": "linear", "step": "piecewise_constant"}
STEP_DECAY = {"decay_at": 2 / 3, "decay_factor": 0.1}
MAX_ASPECT = 2.0
SCRIPT_NAME = re.compile(r"[a-z0-9_]{1,120}\.py")
TEMPLATE = "train.py.j2"
RUNTIME_TEMPLATE = "train_runtime.py.j2"
RUNTIME_PATH = "training/runtime.py"


def plan_training_files(
    linked: LinkedRegistry, series: Series, plans: Mapping[MirId, VariantPlan]
) -> list[PlannedFile]:
    """The training script of ``series`` for each target (and a launch file for multi-device
    targets); none when no variant has a training section with a supported pipeline.

    ``plans`` holds :func:`compiler.plan.plan_variant`'s plan of each such variant, by its id.
    """
    variants = trainable_variants(series)
    if not variants:
        return []
    folder = training_folder(series.id)
    runtime = posixpath.relpath(RUNTIME_PATH, folder)  # scripts find it from their own path
    files = []
    for target_id in sorted(linked.targets):
        target = linked.targets[target_id]
        script = f"{_underscored(target.id)}.py"
        spec = _script_spec(series, target, variants, plans)
        header = {"source": series.path, "series": str(series.id), "target": target.id}
        context = {"header": header, "spec": spec, "runtime": runtime}
        files.append(PlannedFile(f"{folder}/{script}", TEMPLATE, context, series.path))
        if target.device_count > 1:
            launcher = f"{_underscored(target.id)}.sh"
            launch = {"header": header, "launcher": launcher, **_launch(target, script)}
            files.append(PlannedFile(f"{folder}/{launcher}", "launch.sh.j2", launch, series.path))
    return files


def plan_training_runtime() -> PlannedFile:
    """The code every training script shares (``training/runtime.py``); it holds no spec value."""
    return PlannedFile(RUNTIME_PATH, RUNTIME_TEMPLATE, {}, "")


def trainable_variants(series: Series) -> list[Variant]:
    """Variants with a training section whose pipeline (own or the base's) the script supports."""
    return [v for v in _sorted_variants(series) if v.training is not None and _pipeline(series, v)]


def training_gaps(series: Series) -> list[tuple[MirId, str]]:
    """Variants with a training section that get no script, and why."""
    known = ", ".join(sorted(FAMILIES))
    return [
        (v.id, f"no diffusers backend with a supported pipeline class ({known})")
        for v in _sorted_variants(series)
        if v.training is not None and _pipeline(series, v) is None
    ]


def _sorted_variants(series: Series) -> list[Variant]:
    return [series.variants[name] for name in sorted(series.variants, key=lambda n: (n != BASE, n))]


def _underscored(name: str) -> str:
    return name.replace("-", "_")


def training_folder(series: MirId) -> str:
    """``training/<arch>/<series>``: where a series' scripts go in ``generated/`` (scripts are
    run by path, never imported, so only hyphens change)."""
    return f"training/{series.arch}/{_underscored(series.series)}"


def script_path(series: MirId, target_id: str) -> str:
    """The training script of ``series`` for ``target_id``, relative to ``generated/``."""
    return f"{training_folder(series)}/{_underscored(target_id)}.py"


def _inherited(series: Series, variant: Variant, name: str) -> Any:
    """A variant's field, or the base variant's when the variant leaves it out."""
    own = getattr(variant, name)
    base = series.variants.get(BASE)
    if own or base is None:
        return own
    return getattr(base, name)


def _pipeline(series: Series, variant: Variant) -> str | None:
    """The variant's diffusers pipeline class, when the script supports it; a variant whose
    backends only add settings runs the base variant's."""
    backends = [b for b in variant.backends if b.package is not None]
    base = series.variants.get(BASE)
    if not backends and base is not None:
        backends = [b for b in base.backends if b.package is not None]
    for backend in backends:
        if backend.package == "diffusers" and backend.class_name in FAMILIES:
            return str(backend.class_name)
    return None


def _script_spec(
    series: Series,
    target: Target,
    variants: list[Variant],
    plans: Mapping[MirId, VariantPlan],
) -> dict[str, Any]:
    return {
        "series": str(series.id),
        "source": series.path,
        "target": {
            "id": target.id,
            "name": target.name,
            "device": target.device,
            "nodes": target.nodes,
            "devices_per_node": target.devices_per_node,
        },
        "default_variant": variants[0].compat,
        "variants": {v.compat: _variant_spec(series, v, plans[v.id], target) for v in variants},
    }


def _variant_spec(
    series: Series, variant: Variant, plan: VariantPlan, target: Target
) -> dict[str, Any]:
    training = variant.training
    assert training is not None  # trainable_variants keeps only these
    pipeline = _pipeline(series, variant) or ""
    family = FAMILIES[pipeline]
    denoiser = _inherited(series, variant, "denoiser") or family.denoiser
    resolution = training.resolution or plan.workload.height  # as the plan stage estimated
    methods = next(t.training for t in plan.targets if t.target == target.id)
    objective = _objective(series, variant)
    return {
        "mir_id": str(variant.id),
        "repo": _inherited(series, variant, "repo"),
        "pipeline": pipeline,
        "conditioning": family.conditioning,
        "denoiser": denoiser,
        "objective": objective.to_json(),
        "resolution": resolution,
        "buckets": buckets(resolution).to_json(),
        "hyperparameters": _hyperparameters(variant),
        "lora": _lora(variant, family),
        "layers": [_layer_rule(series, variant, denoiser, rule) for rule in training.layers],
        "methods": {
            method.method: _method_spec(series, variant, method, objective.value, resolution)
            for method in methods
        },
    }


def _objective(series: Series, variant: Variant) -> Decision:
    objective = _inherited(series, variant, "objective")
    if objective is not None:
        return Decision(objective, "the spec's objective")
    return Decision(None, "not in the spec: the scheduler's prediction_type decides at run time")


def _hyperparameters(variant: Variant) -> dict[str, Any]:
    training = variant.training
    assert training is not None
    return {
        "descriptor": training.descriptor,
        "effective_batch": training.batch_size,
        "optimizer": training.optimizer,
        "noise_offset": training.noise_offset,
        "caption_dropout": training.caption_dropout,
        "length": _length(training.epochs, training.max_steps).to_json(),
        "lr_schedule": _schedule(training.lr_schedule, training.warmup_steps).to_json(),
    }


def _length(epochs: int | None, max_steps: int | None) -> Decision:
    if max_steps is not None:
        return Decision({"epochs": epochs, "max_steps": max_steps}, "the spec's step count")
    if epochs is not None:
        return Decision({"epochs": epochs, "max_steps": None}, "the spec's epoch count")
    return Decision(
        {"epochs": DEFAULT_EPOCHS, "max_steps": None},
        f"the spec sets no length: {DEFAULT_EPOCHS} epochs (--max-steps overrides)",
    )


def _schedule(name: str, warmup: int) -> Decision:
    value: dict[str, Any] = {"name": SCHEDULES.get(name, "constant"), "warmup_steps": warmup}
    if name == "constant":
        value["name"] = "constant_with_warmup" if warmup else "constant"
    if name == "step":
        value.update(STEP_DECAY)
        return Decision(value, "step decay: ×0.1 after two thirds of the steps (no warmup)")
    return Decision(value, f"the spec's {name} schedule, {warmup} warmup steps")


def _lora(variant: Variant, family: Family) -> dict[str, Any]:
    assert variant.training is not None
    lora = variant.training.lora
    modules = list(lora.target_modules or family.lora_targets)
    return {
        "rank": lora.rank,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        "target_modules": modules,
    }


def _layer_rule(series: Series, variant: Variant, denoiser: str, rule: LayerRule) -> dict[str, Any]:
    if rule.match is not None:
        globs, reason = [rule.match], f"match {rule.match}"
    else:
        prefixes = block_prefixes(series, variant, denoiser, rule.block or "")
        globs, reason = [f"{p}.*" for p in prefixes.value], prefixes.reason
    return {"globs": globs, "lr_scale": rule.lr_scale, "freeze": rule.freeze, "reason": reason}


def block_prefixes(series: Series, variant: Variant, denoiser: str, block: str) -> Decision:
    """The parameter-name prefixes a ``block`` rule covers: the fingerprint's block table of the
    denoiser's own layout when it has one, else the block name read as a module path."""
    for fingerprint in _inherited(series, variant, "fingerprints"):
        own = fingerprint.format == "diffusers" or fingerprint.component == denoiser
        if own and block in fingerprint.blocks:
            reason = f"block {block} of the {fingerprint.format} fingerprint"
            return Decision(list(fingerprint.blocks[block]), reason)
    path = re.sub(r"_(\d+)(_|$)", lambda m: f".{m[1]}{'.' if m[2] else ''}", block)
    return Decision([path], f"block {block} read as the module path {path}")


def _method_spec(
    series: Series, variant: Variant, plan: TrainingPlan, objective: str | None, resolution: int
) -> dict[str, Any]:
    assert variant.training is not None
    rate = variant.training.learning_rate
    learning_rate = (
        Decision(rate, "the spec's learning rate")
        if rate is not None
        else Decision(DEFAULT_LEARNING_RATES[plan.method], f"the usual {plan.method} rate")
    )
    names = ("mixed_precision", "micro_batch", "gradient_accumulation")
    decisions = {name: getattr(plan, name).to_json() for name in names}
    names = ("gradient_checkpointing", "strategy", "launcher")
    decisions.update({name: getattr(plan, name).to_json() for name in names})
    return {
        "learning_rate": learning_rate.to_json(),
        **decisions,
        "fit": plan.fit,
        "metadata": modelspec(series, variant, plan.method, objective, resolution),
    }


def modelspec(
    series: Series, variant: Variant, method: str, objective: str | None, resolution: int
) -> dict[str, str]:
    """The safetensors metadata of the weights a run writes: MIR id and SAI ModelSpec keys
    (the prediction type is left to the script when the spec has no objective)."""
    architecture = MODELSPEC_ARCHITECTURES.get(str(series.id), series.id.series)
    if variant.compat != BASE:
        architecture = f"{architecture}-{variant.compat}"
    kind = "LoRA" if method == "lora" else "fine-tune"
    metadata = {
        "mir.id": str(variant.id),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": architecture + ("/lora" if method == "lora" else ""),
        "modelspec.implementation": "diffusers",
        "modelspec.title": f"{series.name or series.id.series} {variant.compat} {kind}",
        "modelspec.resolution": f"{resolution}x{resolution}",
    }
    if objective is not None:
        metadata["modelspec.prediction_type"] = PREDICTION_TYPES[objective]
    return metadata


def buckets(resolution: int) -> Decision:
    """Aspect-ratio buckets (width, height) of at most ``resolution``² pixels, sides a multiple of
    the bucket step, aspect ratios up to 2:1 either way."""
    step = 64 if resolution >= 256 else max(4, resolution // 4)
    area = resolution * resolution
    found: set[tuple[int, int]] = set()
    for width in range(step * math.ceil(resolution / 2 / step), resolution + 1, step):
        height = area // width // step * step
        if height / width <= MAX_ASPECT:
            found |= {(width, height), (height, width)}
    sizes = [[w, h] for w, h in sorted(found, key=lambda s: (s[0] / s[1], s))]
    reason = f"area ≤ {resolution}², sides in steps of {step}, aspect ratio at most 2:1"
    return Decision(sizes, reason)


def _launch(target: Target, script: str) -> dict[str, Any]:
    if not SCRIPT_NAME.fullmatch(script):
        raise ValueError(f"unexpected script name {script!r}")
    return {
        "script": script,
        "nodes": target.nodes,
        "devices_per_node": target.devices_per_node,
        "reason": f"{target.nodes} node(s) of {target.devices_per_node} device(s), {target.name}",
    }
