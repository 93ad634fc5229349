"""The plan stage: the linked registry → per-variant, per-target decisions (no templates here).

:func:`plan_variant` decides, for one variant and every target GPU, the inference settings and the
training settings, each with its reason; later stages only print what is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.ir import Variant
from compiler.lang.mir import MirId
from compiler.link import LinkedRegistry
from compiler.plan.inference import InferenceInput, plan_inference
from compiler.plan.memory import Workload
from compiler.plan.model import ParameterCounts, PlannedFile, TargetPlan
from compiler.plan.params import parameter_counts
from compiler.plan.training import TrainingInput, plan_training

DEFAULT_RESOLUTION = 512


@dataclass(frozen=True)
class VariantPlan:
    id: MirId
    counts: ParameterCounts
    workload: Workload
    targets: tuple[TargetPlan, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "parameters": self.counts.to_json(),
            "workload": {
                "height": self.workload.height,
                "width": self.workload.width,
                "batch": self.workload.batch,
                "guidance": self.workload.guidance,
            },
            "targets": {t.target: t.to_json() for t in self.targets},
        }


def workload(variant: Variant) -> Workload:
    """Resolution, batch and guidance of one default generation, from the spec's defaults."""
    generation: dict[str, Any] = {}
    for backend in variant.backends:
        generation = {**dict(backend.generation), **generation}
    fallback = DEFAULT_RESOLUTION
    if variant.training is not None and variant.training.resolution is not None:
        fallback = variant.training.resolution
    guidance = generation.get("guidance_scale")
    return Workload(
        height=int(generation.get("height", fallback)),
        width=int(generation.get("width", fallback)),
        batch=int(generation.get("num_images_per_prompt", 1)),
        guidance=True if guidance is None else float(guidance) > 1.0,
    )


def plan_variant(linked: LinkedRegistry, variant: Variant) -> VariantPlan:
    """Inference (and, with a training section, training) plans on every target, sorted by id."""
    counts = parameter_counts(linked, variant)
    work = workload(variant)
    given = InferenceInput(counts, variant.dimensions, work)
    plans = []
    for target_id in sorted(linked.targets):
        target = linked.targets[target_id]
        training: tuple[Any, ...] = ()
        if variant.training is not None:
            resolution = variant.training.resolution or work.height
            train_in = TrainingInput(
                counts.network, variant.dimensions, variant.training, resolution
            )
            training = plan_training(target, train_in)
        inference = plan_inference(target, given)
        plans.append(TargetPlan(target_id, target.device, inference, training))
    return VariantPlan(variant.id, counts, work, tuple(plans))


def params_path(mir: MirId) -> str:
    """Where a variant's inference parameters go in ``generated/``:
    ``params/<arch>/<series>.<compat>.json`` (MIR names hold no dots, so the name is
    unambiguous; one folder per architecture rather than per series keeps a cold build from
    creating some three hundred folders)."""
    return f"params/{mir.arch}/{mir.series}.{mir.compat or 'base'}.json"


def plan_params_file(plan: VariantPlan, source: str) -> PlannedFile:
    """The inference-parameters JSON of one variant: a section per target, with reasons."""
    document = {
        "_generated": {"by": "mirc build", "from": f"spec/{source}", "edit": "the spec, not this"},
        **plan.to_json(),
    }
    return PlannedFile(params_path(plan.id), "params.json.j2", {"document": document}, source)
