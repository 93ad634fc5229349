"""Training settings per target and method: precision, micro-batch and accumulation, gradient
checkpointing, the distributed strategy (none, DDP, FSDP) and the launcher.

The micro-batch is the largest power of two (at most the per-device share of the effective batch)
whose memory fits; gradient checkpointing is turned on only when even a micro-batch of one does
not fit without it; FSDP is chosen for a full fine-tune whose optimizer state does not fit one
device whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from compiler.ir import Dimensions, Target, Training
from compiler.plan import memory
from compiler.plan.inference import budget_bytes, choose_dtype
from compiler.plan.memory import GIB, Workload
from compiler.plan.model import DOES_NOT_FIT, FITS, UNKNOWN, Decision, MemoryBreakdown, TrainingPlan


@dataclass(frozen=True)
class TrainingInput:
    network: int | None
    dims: Dimensions
    training: Training
    resolution: int


def plan_training(target: Target, given: TrainingInput) -> tuple[TrainingPlan, ...]:
    """One plan per training method the spec allows."""
    return tuple(_plan(target, given, method) for method in given.training.methods)


def _plan(target: Target, given: TrainingInput, method: str) -> TrainingPlan:
    precision = _precision(target, given.training)
    devices = target.device_count
    effective = _effective_batch(given.training, devices)
    strategy = _strategy(target, given, method, precision.value)
    search = _search(target, given, method, precision.value, strategy.value, effective, devices)
    micro, checkpointing, breakdown, fit = search
    accumulation = max(1, math.ceil(effective.value / (micro.value * devices)))
    reach = (
        f"{micro.value} per step × {accumulation} steps × {devices} device(s) ≥ {effective.value}"
    )
    return TrainingPlan(
        method=method,
        mixed_precision=precision,
        micro_batch=micro,
        gradient_accumulation=Decision(accumulation, f"{reach} (the effective batch)"),
        gradient_checkpointing=checkpointing,
        strategy=strategy,
        launcher=_launcher(target),
        memory=breakdown,
        fit=fit,
    )


def _precision(target: Target, training: Training) -> Decision:
    if not training.mixed_precision:
        return Decision("no", "the spec turns mixed precision off")
    if target.device != "cuda":
        return Decision("no", f"{target.device}: autocast training is incomplete; fp32")
    dtype = choose_dtype(target)
    return Decision(dtype.value, dtype.reason)


def _effective_batch(training: Training, devices: int) -> Decision:
    if training.batch_size is not None:
        return Decision(training.batch_size, "the spec's effective batch size")
    return Decision(devices, "no batch size in the spec: one sample per device")


def _states(given: TrainingInput, method: str, dtype: str, shards: int) -> int | None:
    if given.network is None:
        return None
    if method == "full":
        return given.network * memory.ADAM_BYTES_PER_PARAM // shards
    lora = given.training.lora
    modules = len(lora.target_modules) or memory.DEFAULT_LORA_MODULES
    extra = memory.lora_parameters(given.dims, lora.rank, modules) or 0
    weights_dtype = "fp32" if dtype == "no" else dtype
    return memory.weight_bytes(given.network, weights_dtype) + extra * memory.ADAM_BYTES_PER_PARAM


def _strategy(target: Target, given: TrainingInput, method: str, dtype: str) -> Decision:
    devices = target.device_count
    if devices == 1:
        return Decision("none", "one device")
    whole = _states(given, method, dtype, 1)
    if method == "lora" or whole is None or whole <= budget_bytes(target) // 2:
        return Decision("ddp", f"{devices} devices; the training state fits each one whole")
    return Decision(
        "fsdp",
        f"full fine-tune state {whole / GIB:.0f} GiB is over half a device: shard {devices} ways",
    )


@dataclass(frozen=True)
class _Fit:
    micro: int
    checkpointing: bool
    activations: int
    total: int


def _search(
    target: Target,
    given: TrainingInput,
    method: str,
    dtype: str,
    strategy: str,
    effective: Decision,
    devices: int,
) -> tuple[Decision, Decision, MemoryBreakdown | None, str]:
    shards = devices if strategy == "fsdp" else 1
    states = _states(given, method, dtype, shards)
    if states is None:
        unknown = "memory unknown: the spec lacks parameter counts"
        return Decision(1, unknown), Decision(True, unknown), None, UNKNOWN
    per_device = max(1, effective.value // devices)
    found = _largest_fit(target, given, "fp32" if dtype == "no" else dtype, states, per_device)
    breakdown = _training_breakdown(states, found, method)
    if found.total > budget_bytes(target):
        nothing = "nothing fits, even a micro-batch of one with recomputation"
        return Decision(1, nothing), Decision(True, nothing), breakdown, DOES_NOT_FIT
    micro = Decision(
        found.micro,
        f"largest power of two ≤ {per_device} per device that fits ({found.total / GIB:.1f} GiB)",
    )
    why = "a micro-batch of one does not fit without it" if found.checkpointing else "not needed"
    return micro, Decision(found.checkpointing, why), breakdown, FITS


def _largest_fit(
    target: Target, given: TrainingInput, dtype: str, states: int, per_device: int
) -> _Fit:
    """The first that fits of: no checkpointing at decreasing micro-batches, then with it."""
    flash = target.device == "cuda"
    candidate = _Fit(1, True, 0, 0)
    for checkpointing in (False, True):
        micro = 2 ** int(math.log2(per_device))
        while micro >= 1:
            work = Workload(given.resolution, given.resolution, micro, guidance=False)
            act = memory.training_activation_bytes(given.dims, work, flash, checkpointing, dtype)
            total = states + (act or 0) + memory.CONTEXT_BYTES
            candidate = _Fit(micro, checkpointing, act or 0, total)
            if total <= budget_bytes(target):
                return candidate
            micro //= 2
    return candidate


def _training_breakdown(states: int, found: _Fit, method: str) -> MemoryBreakdown:
    if method == "full":
        state_name, state_rule = "weights+grads+adam", "16 B/param (fp32 master, grads, Adam)"
    else:
        state_name, state_rule = "frozen weights+lora+adam", "P×s + 16 B per LoRA param"
    formula = (
        f"{state_rule}; activations per Korthikanti et al. 2022 at micro-batch {found.micro}"
        f"{' with checkpointing' if found.checkpointing else ''}"
    )
    parts = ((state_name, states), ("activations", found.activations))
    return MemoryBreakdown((*parts, ("context", memory.CONTEXT_BYTES)), formula)


def _launcher(target: Target) -> Decision:
    if target.device_count == 1:
        return Decision("python", "one device: run the script directly")
    if target.nodes == 1:
        return Decision("torchrun", f"{target.devices_per_node} processes on one node")
    return Decision(
        "torchrun",
        f"{target.nodes} nodes × {target.devices_per_node} processes (run on every node)",
    )
