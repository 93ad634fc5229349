"""Per-target content: a variant's memory-fit table, decisions, loader call and training
commands, and the pages of the target GPUs themselves.

Everything here is read off the plan stage's decisions (``compiler/plan``); nothing is decided
again. A registry may define any number of targets, none included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from compiler.ir import Series, Target, Variant
from compiler.plan import VariantPlan
from compiler.plan.inference import budget_bytes
from compiler.plan.loader import module_path
from compiler.plan.model import (
    DOES_NOT_FIT,
    FITS,
    NEEDS_OFFLOAD,
    UNKNOWN,
    Decision,
    InferencePlan,
    MemoryBreakdown,
    PlannedFile,
    TrainingPlan,
)
from compiler.plan.trainer import script_path
from compiler.site import links
from compiler.site.model import SiteInput, gib

FIT_LABELS = {
    FITS: "fits",
    NEEDS_OFFLOAD: "needs offload",
    DOES_NOT_FIT: "does not fit",
    UNKNOWN: "unknown",
}
FIT_ORDER = (FITS, NEEDS_OFFLOAD, UNKNOWN, DOES_NOT_FIT)
INFERENCE_DECISIONS = (
    ("dtype", "dtype"),
    ("attention", "attention"),
    ("offload", "offload"),
    ("vae_tiling", "VAE tiling"),
    ("vae_slicing", "VAE slicing"),
    ("tf32", "TF32"),
    ("compile", "torch.compile"),
)
TRAINING_DECISIONS = (
    ("mixed_precision", "mixed precision"),
    ("micro_batch", "micro-batch"),
    ("gradient_accumulation", "gradient accumulation"),
    ("gradient_checkpointing", "gradient checkpointing"),
    ("strategy", "distributed strategy"),
    ("launcher", "launcher"),
)
TRAINING_ARGS = "--data DATA_DIR --output OUTPUT_DIR"
RENDEZVOUS_PORT = 29500


def inference_groups(site: SiteInput, variants: list[Variant], page: str) -> list[dict[str, Any]]:
    """The per-target inference plans of a series' variants, variants with identical plans
    shown once together (the variants of an imported series often share all of theirs)."""
    groups: dict[str, dict[str, Any]] = {}
    for variant in variants:
        plan = site.plans.get(variant.id)
        if plan is None or not plan.targets:
            continue
        key = json.dumps([tp.inference.to_json() for tp in plan.targets], sort_keys=True)
        if key not in groups:
            groups[key] = {
                "variants": [],
                "fits": fit_rows(site, plan, page),
                "details": inference_details(site, plan),
            }
        groups[key]["variants"].append(variant.compat)
    return list(groups.values())


def fit_rows(site: SiteInput, plan: VariantPlan, page: str) -> list[dict[str, Any]]:
    """One row per target: memory fit, estimate against usable memory, dtype, offload, why."""
    rows = []
    for target_plan in plan.targets:
        target = site.linked.targets[target_plan.target]
        inference = target_plan.inference
        rows.append(
            {
                **_target_cell(target, page),
                "fit": inference.fit,
                "fit_label": FIT_LABELS[inference.fit],
                "need": gib(inference.memory.total) if inference.memory else "unknown",
                "usable": gib(budget_bytes(target)),
                "dtype": str(inference.dtype.value),
                "offload": str(inference.offload.value),
                "reason": inference.offload.reason,
            }
        )
    return rows


def inference_details(site: SiteInput, plan: VariantPlan) -> list[dict[str, Any]]:
    """Per target: every inference decision with its reason, and the memory breakdown."""
    return [
        {
            "target": site.linked.targets[tp.target].name,
            "fit_label": FIT_LABELS[tp.inference.fit],
            "decisions": _decisions(tp.inference, INFERENCE_DECISIONS),
            "memory": _memory(tp.inference.memory),
        }
        for tp in plan.targets
    ]


def _decisions(plan: InferencePlan | TrainingPlan, names: Iterable[tuple[str, str]]) -> list[Any]:
    rows = []
    for attribute, label in names:
        decision: Decision = getattr(plan, attribute)
        rows.append({"name": label, "value": _value(decision.value), "reason": decision.reason})
    return rows


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _memory(breakdown: MemoryBreakdown | None) -> dict[str, Any] | None:
    if breakdown is None:
        return None
    parts = [{"name": name, "size": gib(n)} for name, n in breakdown.parts]
    return {"parts": parts, "total": gib(breakdown.total), "formula": breakdown.formula}


def _target_cell(target: Target, page: str) -> dict[str, str]:
    return {
        "target": target.name,
        "target_id": target.id,
        "href": links.link(page, links.target_page(target.id)),
    }


def loader_snippet(series: Series, variant: Variant, plan: VariantPlan, site: SiteInput) -> str:
    """How to call the generated loader of this variant, on a target where it fits best."""
    module = "generated." + module_path(series.id).removesuffix(".py").replace("/", ".")
    arguments = [f"variant={json.dumps(variant.compat)}"]
    target = suggested_target(plan, site)
    if target is not None:
        arguments.append(f"target={json.dumps(target)}")
    return f"from {module} import load\n\npipe = load({', '.join(arguments)})"


def suggested_target(plan: VariantPlan, site: SiteInput) -> str | None:
    """The target the loader call shows: the best fit, the fewest devices; of those it fits,
    the smallest; of the others, the largest."""

    def rank(target_id: str) -> tuple[int, int, float, str]:
        target = site.linked.targets[target_id]
        fit = next(tp.inference.fit for tp in plan.targets if tp.target == target_id)
        size = target.memory_gib if fit == FITS else -target.memory_gib
        return FIT_ORDER.index(fit), target.device_count, size, target_id

    return min((tp.target for tp in plan.targets), key=rank, default=None)


def training_command(series: Series, target: Target, launcher: str) -> str:
    """The command line that runs the generated training script, by the plan's launcher."""
    script = f"generated/{script_path(series.id, target.id)}"
    if launcher == "python":
        return f"python {script} {TRAINING_ARGS}"
    if launcher == "accelerate":
        return (
            f"accelerate launch --num_machines {target.nodes} "
            f"--num_processes {target.device_count} \\\n  {script} {TRAINING_ARGS}"
        )
    if target.nodes == 1:
        processes = f"--nproc_per_node={target.devices_per_node}"
        return f"torchrun --standalone {processes} \\\n  {script} {TRAINING_ARGS}"
    return (
        f"torchrun --nnodes={target.nodes} --nproc_per_node={target.devices_per_node} "
        f"--node_rank=$NODE_RANK \\\n  --rdzv_backend=c10d "
        f"--rdzv_endpoint=$MASTER_ADDR:{RENDEZVOUS_PORT} \\\n  {script} {TRAINING_ARGS}"
    )


def training_tabs(
    site: SiteInput, series: Series, plan: VariantPlan, page: str
) -> list[dict[str, Any]]:
    """Per target with a training plan: each method's plan, its reasons, and the command."""
    tabs = []
    for target_plan in plan.targets:
        if not target_plan.training:
            continue
        target = site.linked.targets[target_plan.target]
        methods = [_method(t) for t in target_plan.training]
        launcher = str(target_plan.training[0].launcher.value)
        tabs.append(
            {
                **_target_cell(target, page),
                "methods": methods,
                "command": training_command(series, target, launcher),
            }
        )
    return tabs


def _method(plan: TrainingPlan) -> dict[str, Any]:
    return {
        "method": "LoRA" if plan.method == "lora" else "full fine-tune",
        "fit": plan.fit,
        "fit_label": FIT_LABELS[plan.fit],
        "need": gib(plan.memory.total) if plan.memory else "unknown",
        "decisions": _decisions(plan, TRAINING_DECISIONS),
        "summary": [
            _value(decision.value)
            for decision in (
                plan.micro_batch,
                plan.gradient_accumulation,
                plan.gradient_checkpointing,
                plan.strategy,
            )
        ],
        "formula": plan.memory.formula if plan.memory else None,
    }


def plan_target_pages(site: SiteInput) -> list[PlannedFile]:
    """The targets index and one page per target."""
    pages = [_target_page(site, target) for target in site.targets]
    rows = [_index_row(site, target) for target in site.targets]
    index = PlannedFile(
        links.TARGETS_INDEX, "site/targets.md.j2", {"targets": rows}, "spec/targets/"
    )
    return [index, *pages]


def _fits_on(site: SiteInput, target: Target) -> dict[str, list[tuple[str, VariantPlan]]]:
    found: dict[str, list[tuple[str, VariantPlan]]] = {fit: [] for fit in FIT_LABELS}
    for variant_id, plan in sorted(site.plans.items(), key=lambda item: str(item[0])):
        for target_plan in plan.targets:
            if target_plan.target == target.id:
                found[target_plan.inference.fit].append((str(variant_id), plan))
    return found


def _index_row(site: SiteInput, target: Target) -> dict[str, Any]:
    fits = _fits_on(site, target)
    return {
        **_target_cell(target, links.TARGETS_INDEX),
        "device": target.device,
        "memory": f"{target.memory_gib:g} GiB",
        "devices": f"{target.devices_per_node} × {target.nodes}",
        "dtypes": ", ".join(target.dtypes),
        "counts": {fit: len(found) for fit, found in fits.items()},
    }


def _target_page(site: SiteInput, target: Target) -> PlannedFile:
    page = links.target_page(target.id)
    groups = []
    for fit, found in _fits_on(site, target).items():
        # Variants of unknown memory are only counted: the list says nothing about the target.
        shown = [] if fit == UNKNOWN else found
        entries = [
            _variant_entry(site, variant_id, plan, target, page) for variant_id, plan in shown
        ]
        groups.append(
            {"fit": fit, "label": FIT_LABELS[fit], "count": len(found), "variants": entries}
        )
    context = {
        "name": target.name,
        "id": target.id,
        "facts": _facts(target),
        "usable": gib(budget_bytes(target)),
        "groups": groups,
    }
    return PlannedFile(page, "site/target.md.j2", context, f"spec/{target.path}")


def _variant_entry(
    site: SiteInput, variant_id: str, plan: VariantPlan, target: Target, page: str
) -> dict[str, str]:
    variant = site.linked.variants[plan.id]
    series = site.linked.series_of(variant)
    [target_plan] = [tp for tp in plan.targets if tp.target == target.id]
    memory = target_plan.inference.memory
    return {
        "mir": str(links.display_id(variant)),
        "href": links.link(page, links.series_page(series), links.variant_anchor(variant.compat)),
        "need": gib(memory.total) if memory else "unknown",
        "offload": str(target_plan.inference.offload.value),
    }


def _facts(target: Target) -> list[tuple[str, str]]:
    """The target's spec as label/value rows, in the schema's order, present fields only."""
    rows: list[tuple[str, str | None]] = [
        ("vendor", target.vendor),
        ("device type", target.device),
        ("architecture", target.architecture),
        ("compute capability", target.compute_capability),
        ("memory per device", f"{target.memory_gib:g} GiB"),
        ("memory bandwidth", _opt(target.memory_bandwidth_gbs, "GB/s")),
        ("data types", ", ".join(target.dtypes)),
        ("attention kernels", ", ".join(target.attention)),
        ("peak TFLOP/s", ", ".join(f"{k} {v:g}" for k, v in sorted(target.tflops.items())) or None),
        ("devices per node", str(target.devices_per_node)),
        ("nodes", str(target.nodes)),
        ("host memory per node", _opt(target.host_memory_gib, "GiB")),
        (
            "interconnect",
            ", ".join(f"{k}: {v}" for k, v in sorted(target.interconnect.items())) or None,
        ),
        ("made of", target.device_target),
        ("source", target.source),
    ]
    return [(label, value) for label, value in rows if value is not None]


def _opt(value: float | None, unit: str) -> str | None:
    return None if value is None else f"{value:g} {unit}"
