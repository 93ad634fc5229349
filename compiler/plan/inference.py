"""Inference settings per target: dtype, attention, offload, VAE tiling/slicing, TF32, compile.

Every rule is here, with the reason it gives; the memory figures come from
:mod:`compiler.plan.memory`.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Dimensions, Target
from compiler.plan import memory
from compiler.plan.memory import GIB, Workload
from compiler.plan.model import (
    DOES_NOT_FIT,
    FITS,
    NEEDS_OFFLOAD,
    UNKNOWN,
    Decision,
    InferencePlan,
    MemoryBreakdown,
    ParameterCounts,
)

# Share of a device's memory a plan may use: the rest is fragmentation and other processes.
CUDA_BUDGET = 0.90
UNIFIED_BUDGET = 0.70  # mps and cpu share memory with the operating system
ATTENTION_BACKENDS = ("flash-attention-3", "flash-attention-2", "xformers")


@dataclass(frozen=True)
class InferenceInput:
    """What inference planning needs to know of a variant."""

    counts: ParameterCounts
    dims: Dimensions
    work: Workload


def budget_bytes(target: Target) -> int:
    share = CUDA_BUDGET if target.device == "cuda" else UNIFIED_BUDGET
    return int(target.memory_gib * GIB * share)


def choose_dtype(target: Target) -> Decision:
    if target.device == "cpu":
        return Decision("fp32", "CPU: fp32 kernels are the complete and fast ones")
    if target.device == "mps":
        return Decision("fp16", "Apple MPS computes fp16 natively; bf16 depends on the macOS")
    if "bf16" in target.dtypes:
        return Decision("bf16", f"{target.name} supports bf16: fp32's range, half the memory")
    return Decision("fp16", f"{target.name} has no bf16; fp16 halves memory")


def choose_attention(target: Target) -> Decision:
    if target.device != "cuda":
        return Decision("sdpa", f"{target.device}: PyTorch scaled_dot_product_attention")
    for backend in ATTENTION_BACKENDS:
        if backend in target.attention:
            return Decision(
                backend, f"{backend} is the fastest kernel {target.name} supports (sdpa if absent)"
            )
    return Decision("sdpa", "PyTorch SDPA picks the best kernel this GPU has")


def plan_inference(target: Target, given: InferenceInput) -> InferencePlan:
    """The inference settings of one variant on one target, each with its reason."""
    dtype = choose_dtype(target)
    breakdown = _breakdown(given, dtype.value, tiled=False)
    offload, fit = _offload(target, given, breakdown, dtype.value)
    tiling = _vae_tiling(target, given, breakdown, offload.value)
    if tiling.value and breakdown is not None:
        breakdown = _breakdown(given, dtype.value, tiled=True)
    return InferencePlan(
        dtype=dtype,
        attention=choose_attention(target),
        offload=offload,
        vae_tiling=tiling,
        vae_slicing=_vae_slicing(given.work),
        tf32=_tf32(target),
        compile=_compile(target, offload.value),
        memory=breakdown,
        fit=fit,
    )


def _breakdown(given: InferenceInput, dtype: str, tiled: bool) -> MemoryBreakdown | None:
    counts = given.counts
    if counts.network is None or any(n is None for _, n in counts.components):
        return None
    activations = memory.inference_activation_bytes(given.dims, given.work, dtype, True)
    if activations is None:
        return None
    parts = [("network", memory.weight_bytes(counts.network, dtype))]
    parts += [(role, memory.weight_bytes(n or 0, dtype)) for role, n in counts.components]
    vae = memory.vae_decode_bytes(given.work, dtype, tiled)
    parts += [("activations", max(activations, vae)), ("context", memory.CONTEXT_BYTES)]
    formula = (
        f"weights P×{memory.DTYPE_BYTES[dtype]} B; activations max(denoiser block "
        f"b'×T×h×s×{memory.INFERENCE_WORKING_SET}, VAE decode{' tiled' if tiled else ''}) "
        f"at {given.work.width}×{given.work.height}, batch {given.work.batch}"
    )
    return MemoryBreakdown(tuple(parts), formula)


def _offload(
    target: Target, given: InferenceInput, breakdown: MemoryBreakdown | None, dtype: str
) -> tuple[Decision, str]:
    if breakdown is None:
        return Decision(
            "none", "memory unknown: the spec lacks parameter counts or dimensions"
        ), UNKNOWN
    budget = budget_bytes(target)
    need = breakdown.total
    if target.device == "cpu":
        fit = FITS if need <= budget else DOES_NOT_FIT
        return Decision("none", "CPU: the weights are in host memory already"), fit
    if need <= budget:
        return Decision("none", f"{_gib(need)} fits in {_gib(budget)} usable"), FITS
    parts = dict(breakdown.parts)
    working = parts["activations"] + parts["context"]
    largest = max(n for name, n in breakdown.parts if name not in ("activations", "context"))
    if largest + working <= budget:
        reason = f"{_gib(need)} > {_gib(budget)}: one model at a time on the GPU"
        return Decision("model", reason), NEEDS_OFFLOAD
    layers = given.dims.layers or 1
    if largest // layers + working <= budget:
        reason = f"even the largest model ({_gib(largest)}) does not fit: stream it layer by layer"
        return Decision("sequential", reason), NEEDS_OFFLOAD
    return Decision(
        "sequential", f"one layer and its activations exceed {_gib(budget)}"
    ), DOES_NOT_FIT


def _vae_tiling(
    target: Target, given: InferenceInput, breakdown: MemoryBreakdown | None, offload: str
) -> Decision:
    decode = memory.vae_decode_bytes(given.work, "fp16", tiled=False)
    if offload != "none":
        return Decision(True, "offloading: keep the VAE decode small too")
    if decode > budget_bytes(target) // 4:
        return Decision(True, f"VAE decode needs {_gib(decode)}, over a quarter of the memory")
    return Decision(False, f"VAE decode needs {_gib(decode)}; no tiling needed")


def _vae_slicing(work: Workload) -> Decision:
    if work.batch > 1:
        return Decision(True, f"batch of {work.batch}: decode one image at a time")
    return Decision(False, "batch of 1: nothing to slice")


def _tf32(target: Target) -> Decision:
    if "tf32" in target.dtypes:
        return Decision(True, "TF32 tensor cores speed up the fp32 matmuls that remain")
    return Decision(False, f"{target.name} has no TF32")


def _compile(target: Target, offload: str) -> Decision:
    if target.device != "cuda":
        return Decision(False, f"{target.device}: torch.compile gains little here")
    major = int((target.compute_capability or "0.0").split(".")[0])
    if major < 8:
        return Decision(False, "compute capability below 8.0: Triton kernels gain little")
    if offload != "none":
        return Decision(False, "offloading moves weights between calls, which breaks graphs")
    return Decision(True, "CUDA sm80+ without offload: compile fuses kernels (first call slow)")


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"
