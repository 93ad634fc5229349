"""The curated variants: each spec variant, the network it records the parameter count of, and
its fingerprint plans (``plan.py`` explains them)."""

from __future__ import annotations

from tools.fingerprinting import plans_components as comp
from tools.fingerprinting import plans_denoisers as den
from tools.fingerprinting.plan import VariantPlan
from tools.fingerprinting.plans_lora import LORA_FAMILIES


def _lora_variants(path: str, compats: dict[str, str]) -> list[VariantPlan]:
    """``compats``: the variant's compatibility name -> its LoRA family."""
    plans = []
    for compat, family in compats.items():
        base_model, prints = LORA_FAMILIES[family]
        plans.append(VariantPlan(path, compat, None, prints, base_model))
    return plans


PLANS: list[VariantPlan] = [
    VariantPlan(
        "models/unet/stable-diffusion-v1.yaml",
        "base",
        "sd1",
        den.sd_unet("sd1", "clip-l", "sd1-ldm"),
    ),
    # sd-mecha has no configuration for SD 2: its prints carry no components
    VariantPlan(
        "models/unet/stable-diffusion-2.yaml", "base", "sd2", den.sd_unet("sd2", "clip-h", None)
    ),
    VariantPlan(
        "models/unet/stable-diffusion-2.yaml", "512px", "sd2", den.sd_unet("sd2", "clip-h", None)
    ),
    VariantPlan("models/unet/stable-diffusion-xl.yaml", "base", "sdxl", den.SDXL_BASE),
    VariantPlan(
        "models/unet/stable-diffusion-xl.yaml", "refiner", "sdxl-refiner", den.SDXL_REFINER
    ),
    VariantPlan(
        "models/dit/stable-diffusion-3.yaml", "base", "sd3", den.mmdit("sd3", 23, (), (0, 1, 2))
    ),
    VariantPlan(
        "models/dit/stable-diffusion-3.yaml",
        "3-5-large",
        "sd35-large",
        den.mmdit("sd35-large", 37, ("qk",), (1,)),
    ),
    VariantPlan(
        "models/dit/stable-diffusion-3.yaml",
        "3-5-medium",
        "sd35-medium",
        den.mmdit("sd35-medium", 23, ("qk", "attn2"), (2,)),
    ),
    VariantPlan("models/dit/flux-1-dev.yaml", "base", "flux-dev", den.flux("flux-dev", True)),
    VariantPlan(
        "models/dit/flux-1-schnell.yaml", "base", "flux-schnell", den.flux("flux-schnell", False)
    ),
    VariantPlan("models/vae/kl-f8.yaml", "base", "kl-f8", comp.kl_f8("kl-f8")),
    VariantPlan(
        "models/vae/kl-f8.yaml", "stable-diffusion-xl", "kl-f8-sdxl", comp.kl_f8("kl-f8-sdxl")
    ),
    VariantPlan(
        "models/vae/kl-f8-c16.yaml",
        "stable-diffusion-3",
        "c16-sd3",
        comp.c16("c16-sd3", "sai", True),
    ),
    VariantPlan(
        "models/vae/kl-f8-c16.yaml", "flux-1", "c16-flux", comp.c16("c16-flux", "bfl", False)
    ),
    VariantPlan("models/vit/clip-l.yaml", "base", "clip-l", comp.CLIP_L),
    VariantPlan(
        "models/vit/clip-l.yaml", "stable-diffusion-3", "clip-l-proj", comp.CLIP_L_PROJECTION
    ),
    VariantPlan("models/vit/clip-g.yaml", "base", "clip-g", comp.CLIP_G),
    VariantPlan("models/vit/clip-h.yaml", "base", "clip-h", comp.CLIP_H),
    VariantPlan("models/stst/t5-xxl.yaml", "base", "t5-xxl", comp.T5_XXL),
    *_lora_variants("models/lora/lora.yaml", {family: family for family in LORA_FAMILIES}),
    *_lora_variants(
        "models/lora/hyper.yaml",
        {
            "stable-diffusion-v1": "stable-diffusion-v1",
            "stable-diffusion-xl": "stable-diffusion-xl",
            "stable-diffusion-3": "stable-diffusion-3",
            "flux-1-dev": "flux-1-dev",
        },
    ),
    *_lora_variants(
        "models/lora/lcm.yaml",
        {
            "stable-diffusion-v1": "stable-diffusion-v1",
            "stable-diffusion-xl": "stable-diffusion-xl",
        },
    ),
    # tensorart/stable-diffusion-3.5-large-TurboX is the SD3 entry upstream gives turbo.
    *_lora_variants(
        "models/lora/turbo.yaml",
        {"flux-1-dev": "flux-1-dev", "stable-diffusion-3": "stable-diffusion-3-5-large"},
    ),
]

# Variants no state-dict shape can tell apart (same network, other weights or settings).
INDISTINGUISHABLE: tuple[frozenset[str], ...] = (
    frozenset({"mir:info.unet.stable-diffusion-2", "mir:info.unet.stable-diffusion-2:512px"}),
    frozenset({"mir:info.vae.kl-f8", "mir:info.vae.kl-f8:stable-diffusion-xl"}),
    frozenset({"mir:info.vae.kl-f8-c16:stable-diffusion-3", "mir:info.vae.kl-f8-c16:flux-1"}),
)
# LoRAs of these base models have the same modules and widths (FLUX.1 [dev]'s guidance embedder
# is no LoRA target).
LORA_SAME_LAYOUT: tuple[frozenset[str], ...] = (
    frozenset({"mir:info.dit.flux-1-dev", "mir:info.dit.flux-1-schnell"}),
)


def indistinguishable(a: VariantPlan, b: VariantPlan, a_id: str, b_id: str) -> bool:
    """Whether no fingerprint can tell variant ``a`` (MIR id ``a_id``) from ``b``: the same
    network with other weights, or LoRAs of base models with one layout."""
    if frozenset({a_id, b_id}) in INDISTINGUISHABLE:
        return True
    if a.base_model is None or b.base_model is None:
        return False
    bases = frozenset({a.base_model, b.base_model})
    return len(bases) == 1 or bases in LORA_SAME_LAYOUT
