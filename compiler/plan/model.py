"""The plan: every value a generated file prints, decided here with the reason for it.

Templates never compute; they print these values. Each target-dependent choice is a
:class:`Decision` carrying a short reason that ends up in the generated output, so a user sees why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    """A chosen value and why it was chosen."""

    value: Any
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters of a variant's own network and of the components it links to."""

    network: int | None
    components: tuple[tuple[str, int | None], ...] = ()

    @property
    def total(self) -> int | None:
        counts = [self.network, *(n for _, n in self.components)]
        return None if any(c is None for c in counts) else sum(c for c in counts if c)

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "components": dict(self.components), "total": self.total}


@dataclass(frozen=True)
class MemoryBreakdown:
    """Estimated bytes by what holds them; ``formula`` says how each was computed."""

    parts: tuple[tuple[str, int], ...]
    formula: str

    @property
    def total(self) -> int:
        return sum(n for _, n in self.parts)

    def to_json(self) -> dict[str, Any]:
        gib = {name: round(n / 2**30, 3) for name, n in self.parts}
        return {"gib": gib, "total_gib": round(self.total / 2**30, 3), "formula": self.formula}


# How a plan's memory compares with the target: the site's memory-fit table.
FITS = "fits"
NEEDS_OFFLOAD = "needs-offload"
DOES_NOT_FIT = "does-not-fit"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class InferencePlan:
    dtype: Decision
    attention: Decision
    offload: Decision
    vae_tiling: Decision
    vae_slicing: Decision
    tf32: Decision
    compile: Decision
    memory: MemoryBreakdown | None
    fit: str

    def to_json(self) -> dict[str, Any]:
        names = ("dtype", "attention", "offload", "vae_tiling", "vae_slicing", "tf32", "compile")
        decisions = {name: getattr(self, name).to_json() for name in names}
        return {
            **decisions,
            "memory": self.memory.to_json() if self.memory else None,
            "fit": self.fit,
        }


@dataclass(frozen=True)
class TrainingPlan:
    method: str  # "lora" or "full"
    mixed_precision: Decision
    micro_batch: Decision
    gradient_accumulation: Decision
    gradient_checkpointing: Decision
    strategy: Decision  # "none", "ddp" or "fsdp"
    launcher: Decision  # "python", "torchrun" or "accelerate"
    memory: MemoryBreakdown | None
    fit: str

    def to_json(self) -> dict[str, Any]:
        names = (
            "mixed_precision",
            "micro_batch",
            "gradient_accumulation",
            "gradient_checkpointing",
            "strategy",
            "launcher",
        )
        out: dict[str, Any] = {name: getattr(self, name).to_json() for name in names}
        out["memory"] = self.memory.to_json() if self.memory else None
        out["fit"] = self.fit
        return out


@dataclass(frozen=True)
class TargetPlan:
    target: str
    device: str  # the target's device kind (cpu, cuda, mps): where a loader places the model
    inference: InferencePlan
    training: tuple[TrainingPlan, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "inference": self.inference.to_json(),
            "training": {t.method: t.to_json() for t in self.training},
        }


@dataclass(frozen=True)
class PlannedFile:
    """One file of ``generated/``: where it goes, the template, the finished values it prints,
    and the spec it came from (named in the file's header)."""

    path: str  # relative to generated/, forward slashes
    template: str  # relative to templates/
    context: dict[str, Any]
    source: str  # the spec file, relative to the spec folder
