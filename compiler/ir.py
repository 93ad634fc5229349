"""The validated registry: typed, frozen values the validate stage produces and later stages read.

Every MIR id a spec mentions is kept as a :class:`Reference` (the parsed id plus where it was
written) so that the link stage can name the referring file, line and column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.diagnostics import Span
from compiler.lang.mir import MirId

# The upstream database writes the base compatibility entry as "*"; specs write "base".
BASE = "base"

# A tensor shape; None is a size the file's author chooses (a LoRA's rank).
Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Reference:
    """A MIR id mentioned by a spec, with the role it plays there (``components.vae`` …)."""

    target: MirId
    role: str
    span: Span


@dataclass(frozen=True)
class Backend:
    """One way to run a variant. ``package`` is None for a settings-only backend: it adds its
    generation, precision and scheduler to the base variant's backend at the same position."""

    package: str | None
    class_name: str | None = None
    args: Mapping[str, Any] | None = None  # None: not written; {} is a call without arguments
    generation: Mapping[str, Any] = field(default_factory=dict)
    precision: Reference | None = None
    scheduler: Reference | None = None
    scheduler_args: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fingerprint:
    """A checkpoint layout: distinctive keys with shapes, per format."""

    format: str
    required: Mapping[str, Shape]
    optional: Mapping[str, Shape] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()
    component: str | None = None
    tensors: int | None = None
    parameters: int | None = None
    blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerRule:
    match: str | None
    block: str | None
    lr_scale: float | None
    freeze: bool


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Training:
    """A variant's fine-tuning defaults; ``descriptor`` fields are already expanded."""

    methods: tuple[str, ...] = ("lora",)
    descriptor: str | None = None
    resolution: int | None = None
    batch_size: int | None = None
    gpus: int | None = None
    learning_rate: float | None = None
    optimizer: str = "adamw"
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    epochs: int | None = None
    max_steps: int | None = None
    mixed_precision: bool = True
    noise_offset: float = 0.0
    caption_dropout: float = 0.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    layers: tuple[LayerRule, ...] = ()


@dataclass(frozen=True)
class Dimensions:
    """Architecture sizes from a model's configuration (all optional)."""

    hidden_size: int | None = None
    layers: int | None = None
    heads: int | None = None
    latent_channels: int | None = None
    patch_size: int | None = None
    vae_scale_factor: int | None = None
    max_sequence_length: int | None = None


@dataclass(frozen=True)
class FileHash:
    sha256: str
    generation: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One compatibility entry of a series (``base`` for the series' own default)."""

    id: MirId
    compat: str
    span: Span
    name: str | None = None
    description: str | None = None
    repo: str | None = None
    backends: tuple[Backend, ...] = ()
    denoiser: str | None = None
    components: Mapping[str, Reference] = field(default_factory=dict)
    base_model: Reference | None = None
    objective: str | None = None
    parameters: int | None = None
    dimensions: Dimensions = field(default_factory=Dimensions)
    file_hashes: tuple[FileHash, ...] = ()
    layer_hashes: tuple[str, ...] = ()
    fingerprints: tuple[Fingerprint, ...] = ()
    training: Training | None = None
    license: str | None = None
    upstream: Mapping[str, str] = field(default_factory=dict)
    dtype: str | None = None  # ops precisions only

    @property
    def references(self) -> tuple[Reference, ...]:
        """Every MIR id this variant mentions."""
        refs = list(self.components.values())
        if self.base_model is not None:
            refs.append(self.base_model)
        for backend in self.backends:
            refs.extend(r for r in (backend.precision, backend.scheduler) if r is not None)
        return tuple(refs)


@dataclass(frozen=True)
class Series:
    """A model series or an ops entry: one spec file, its variants keyed by compatibility."""

    id: MirId
    kind: str  # "series" or "ops"
    path: str  # relative to the spec folder, with forward slashes
    span: Span
    variants: Mapping[str, Variant]
    name: str | None = None
    description: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A target GPU, machine or cluster."""

    id: str
    path: str
    span: Span
    name: str
    device: str
    memory_gib: float
    dtypes: tuple[str, ...]
    attention: tuple[str, ...]
    devices_per_node: int
    nodes: int
    vendor: str = "generic"
    compute_capability: str | None = None
    architecture: str | None = None
    memory_bandwidth_gbs: float | None = None
    host_memory_gib: float | None = None
    tflops: Mapping[str, float] = field(default_factory=dict)
    interconnect: Mapping[str, Any] = field(default_factory=dict)
    device_target: str | None = None
    source: str | None = None

    @property
    def device_count(self) -> int:
        return self.devices_per_node * self.nodes


@dataclass(frozen=True)
class Registry:
    """Everything the spec folder holds, validated (not yet linked)."""

    spec_dir: str
    series: tuple[Series, ...]
    targets: tuple[Target, ...]
