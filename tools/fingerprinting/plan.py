"""The plan types: which fingerprints a curated variant carries, cut from which derived source.

Keys are written relative to the source's prefix (``input_blocks.0.0.weight`` for
``model.diffusion_model.input_blocks.0.0.weight``). Required keys are the few that tell a
variant apart; forbidden keys are present in a rival variant and absent here; optional keys may
or may not be in a file. Shapes, tensor and parameter totals and merge blocks are never written
in a plan: ``tools.fingerprints.fingerprint`` computes them from the source.
"""

from __future__ import annotations

from typing import NamedTuple


class Print(NamedTuple):
    """One fingerprint of a variant: a checkpoint format, cut from one derived source."""

    source: str
    format: str
    component: str | None
    required: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    # Other sources that share the file, for the merge blocks of a whole-model single file.
    file: tuple[str, ...] | None = None
    # The sd-mecha model configuration of that whole file: its components (clip_l, vae …)
    sd_mecha_config: str | None = None


class VariantPlan(NamedTuple):
    path: str  # under spec/
    compat: str
    model: str | None  # the network whose parameter count the variant records
    prints: tuple[Print, ...]
    base_model: str | None = None  # LoRAs: the MIR id of the model they adapt
