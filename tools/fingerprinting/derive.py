"""Every layout the curated fingerprints are cut from, derived and cross-checked in one pass.

A *source* is one checkpoint layout of one network (``sd1/ldm``: the SD 1 UNet as it sits in an
ldm single file). Building the sources runs diffusers' converters on them (``crosscheck``), so a
derivation that returns has already been checked against diffusers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from tools.fingerprinting import configs as c
from tools.fingerprinting import crosscheck as x
from tools.fingerprinting import layouts as lay
from tools.fingerprinting import lora
from tools.fingerprinting.configs import Layout, ModelSpec, state_layout

UNET_PREFIX = "model.diffusion_model."
UNET = "UNet2DConditionModel"
MMDIT = "SD3Transformer2DModel"
FLUX = "FluxTransformer2DModel"
VAE = "AutoencoderKL"

MODELS: dict[str, ModelSpec] = {
    "sd1": ModelSpec("diffusers", UNET, c.UNET_SD1),
    "sd2": ModelSpec("diffusers", UNET, c.UNET_SD2),
    "sdxl": ModelSpec("diffusers", UNET, c.UNET_SDXL_BASE),
    "sdxl-refiner": ModelSpec("diffusers", UNET, c.UNET_SDXL_REFINER),
    "sd3": ModelSpec("diffusers", MMDIT, c.SD3_MEDIUM),
    "sd35-large": ModelSpec("diffusers", MMDIT, c.SD35_LARGE),
    "sd35-medium": ModelSpec("diffusers", MMDIT, c.SD35_MEDIUM),
    "flux-dev": ModelSpec("diffusers", FLUX, c.FLUX_DEV),
    "flux-schnell": ModelSpec("diffusers", FLUX, c.FLUX_SCHNELL),
    "kl-f8": ModelSpec("diffusers", VAE, c.VAE_KL_F8),
    "kl-f8-sdxl": ModelSpec("diffusers", VAE, c.VAE_KL_F8_SDXL),
    "c16-sd3": ModelSpec("diffusers", VAE, c.VAE_C16_SD3),
    "c16-flux": ModelSpec("diffusers", VAE, c.VAE_C16_FLUX),
    "clip-l": ModelSpec("transformers", "CLIPTextModel", c.CLIP_L),
    "clip-l-proj": ModelSpec("transformers", "CLIPTextModelWithProjection", c.CLIP_L),
    "clip-g": ModelSpec("transformers", "CLIPTextModelWithProjection", c.CLIP_G),
    "clip-h": ModelSpec("transformers", "CLIPTextModel", c.CLIP_H),
    "t5-xxl": ModelSpec("transformers", "T5EncoderModel", c.T5_XXL),
}

# The LoRA targets of diffusers' training scripts (train_text_to_image_lora*, train_dreambooth_
# lora_sd3/flux); the curated specs' training sections use the same lists.
PEFT_TARGETS: dict[str, tuple[str, ...]] = {
    "unet": ("to_q", "to_k", "to_v", "to_out.0"),
    "sd3": (
        "to_q",
        "to_k",
        "to_v",
        "to_out.0",
        "add_q_proj",
        "add_k_proj",
        "add_v_proj",
        "to_add_out",
    ),
    "flux": (
        "to_q",
        "to_k",
        "to_v",
        "to_out.0",
        "add_q_proj",
        "add_k_proj",
        "add_v_proj",
        "to_add_out",
        "ff.net.0.proj",
        "ff.net.2",
        "ff_context.net.0.proj",
        "ff_context.net.2",
    ),
}


@dataclass
class Source:
    """One layout: absolute key names, the prefix its fingerprints name keys relative to, keys
    that may also be present, and whether shapes hold a free LoRA rank."""

    layout: dict[str, tuple[int | None, ...]]
    prefix: str = ""
    optional: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    is_lora: bool = False
    block_of: dict[str, str] = field(default_factory=dict)


@dataclass
class Derivation:
    """All sources, the meta models they come from, and their parameter counts."""

    sources: dict[str, Source] = field(default_factory=dict)
    models: dict[str, torch.nn.Module] = field(default_factory=dict)

    def model(self, name: str) -> torch.nn.Module:
        if name not in self.models:
            self.models[name] = c.build(MODELS[name])
        return self.models[name]

    def parameters(self, name: str) -> int:
        """Parameters of a model, each once (buffers such as SD3's ``pos_embed`` not counted;
        T5's tied ``encoder.embed_tokens`` not counted twice)."""
        model = self.model(name)
        tied = set(getattr(model, "_tied_weights_keys", None) or {})
        return sum(p.numel() for key, p in model.named_parameters() if key not in tied)

    def add(
        self,
        name: str,
        layout: Layout,
        prefix: str = "",
        optional: Layout | None = None,
        block_of: dict[str, str] | None = None,
    ) -> None:
        self.sources[name] = Source(
            dict(layout), prefix, dict(optional or {}), False, block_of or {}
        )

    def layout(self, name: str) -> Layout:
        return state_layout(self.model(name))


def derive() -> Derivation:
    """Build and cross-check every source."""
    d = Derivation()
    for name in ("sd1", "sd2", "sdxl", "sdxl-refiner"):
        _unet(d, name)
    for name in ("sd3", "sd35-large", "sd35-medium"):
        _mmdit(d, name)
    for name in ("flux-dev", "flux-schnell"):
        _flux(d, name)
    for name in ("kl-f8", "kl-f8-sdxl", "c16-sd3", "c16-flux"):
        _vae(d, name)
    _clip_l(d)
    _open_clip(d)
    _t5(d)
    _loras(d)
    return d


def _unet(d: Derivation, name: str) -> None:
    config = MODELS[name].config
    layout = d.layout(name)
    rename = lay.ldm_unet_rename(config)
    original = lay.prefixed(lay.renamed(layout, rename), UNET_PREFIX)
    x.check_ldm_unet(original, config, d.model(name))
    last_out = len(config["up_block_types"]) * (int(config["layers_per_block"]) + 1) - 1
    ldm_blocks = {key: ldm_block(key, last_out) for key in original}
    d.add(f"{name}/ldm", original, UNET_PREFIX, block_of=ldm_blocks)
    diffusers_blocks = {key: ldm_blocks[UNET_PREFIX + rename(key)] for key in layout}
    d.add(f"{name}/diffusers", layout, block_of=diffusers_blocks)


def ldm_block(key: str, last_out: int) -> str:
    """The merge-tool block of a UNet key in the ldm/sgm layout (supermerger's names: BASE for
    the embeddings, IN00…, M00, OUT00…; the final ``out.`` layers belong to the last OUT)."""
    rest = key.removeprefix(UNET_PREFIX)
    if m := re.match(r"input_blocks\.(\d+)\.", rest):
        return f"IN{int(m[1]):02}"
    if m := re.match(r"output_blocks\.(\d+)\.", rest):
        return f"OUT{int(m[1]):02}"
    if rest.startswith("middle_block."):
        return "M00"
    if rest.startswith("out."):
        return f"OUT{last_out:02}"
    return "BASE"


def _mmdit(d: Derivation, name: str) -> None:
    layout = d.layout(name)
    original = lay.prefixed(lay.renamed(layout, lay.sai_mmdit_rename), UNET_PREFIX)
    x.check_popping(
        original, "convert_sd3_transformer_checkpoint_to_diffusers", d.model(name), name
    )
    d.add(f"{name}/sai", original, UNET_PREFIX)
    d.add(f"{name}/diffusers", layout)


def _flux(d: Derivation, name: str) -> None:
    layout = d.layout(name)
    original = lay.renamed(layout, lay.bfl_flux_rename)
    x.check_popping(
        original, "convert_flux_transformer_checkpoint_to_diffusers", d.model(name), name
    )
    d.add(f"{name}/bfl", original)
    d.add(f"{name}/diffusers", layout)


def _vae(d: Derivation, name: str) -> None:
    config = MODELS[name].config
    layout = d.layout(name)
    original = lay.ldm_vae_layout(layout, len(config["down_block_types"]))
    x.check_ldm_vae(lay.prefixed(original, "first_stage_model."), config, d.model(name))
    x.check_ldm_vae(original, config, d.model(name))
    d.add(f"{name}/diffusers", layout)
    d.add(f"{name}/ldm", lay.prefixed(original, "first_stage_model."), "first_stage_model.")
    d.add(f"{name}/file", original)


def _clip_l(d: Derivation) -> None:
    saved = d.layout("clip-l")
    hub = lay.hub_clip_layout(saved)
    ids: Layout = {"text_model.embeddings.position_ids": (1, 77)}
    d.add("clip-l/hub", hub, optional=ids)
    d.add("clip-l/saved", saved)
    for fmt, prefix in (("ldm", "cond_stage_model.transformer."), ("sgm", _SGM_CLIP_L)):
        original = lay.prefixed(hub, prefix)
        x.check_ldm_clip(original, d.model("clip-l"), hub)
        d.add(f"clip-l/{fmt}", original, prefix, optional=lay.prefixed(ids, prefix))
    d.add("clip-l-proj/hub", d.layout("clip-l-proj"))
    _sai_text(d, "clip-l-proj", d.layout("clip-l-proj"), "clip_l")


_SGM_CLIP_L = "conditioner.embedders.0.transformer."
SGM_CLIP_G = "conditioner.embedders.1.model."
SGM_REFINER_CLIP_G = "conditioner.embedders.0.model."
LDM_CLIP_H = "cond_stage_model.model."


def _open_clip(d: Derivation) -> None:
    hub = d.layout("clip-g")
    d.add("clip-g/hub", hub)
    _sai_text(d, "clip-g", hub, "clip_g")
    for fmt, prefix in (("sgm", SGM_CLIP_G), ("sgm-refiner", SGM_REFINER_CLIP_G)):
        original = lay.prefixed(lay.open_clip_layout(hub), prefix)
        x.check_open_clip(original, prefix, d.model("clip-g"), hub, ())
        d.add(f"clip-g/{fmt}", original, prefix, optional={prefix + "logit_scale": ()})
    saved = d.layout("clip-h")
    hub = lay.hub_clip_layout(saved)
    d.add("clip-h/hub", hub)
    d.add("clip-h/saved", saved)
    inner = lay.open_clip_layout(hub)
    # SD 2's checkpoint keeps ViT-H/14's last text block and its projection, unused.
    extra = lay.open_clip_extra_layer(inner, c.CLIP_H_LAYERS_IN_CHECKPOINT - 1)
    width = int(c.CLIP_H["hidden_size"])
    extra["text_projection"] = (width, width)
    original = lay.prefixed({**inner, **extra}, LDM_CLIP_H)
    ignored = lay.prefixed(extra, LDM_CLIP_H)
    x.check_open_clip(original, LDM_CLIP_H, d.model("clip-h"), hub, ignored)
    d.add("clip-h/ldm", original, LDM_CLIP_H, optional={LDM_CLIP_H + "logit_scale": ()})


# Stable Diffusion 3's all-in-one files (sd3_medium_incl_clips_t5xxlfp16) keep each text encoder
# in its transformers layout under text_encoders.<name>.transformer. (and a logit_scale beside).
SAI_TEXT = "text_encoders.{}.transformer."


def _sai_text(d: Derivation, name: str, hub: Layout, encoder: str) -> None:
    prefix = f"text_encoders.{encoder}."
    layout = lay.prefixed(hub, prefix + "transformer.")
    d.add(f"{name}/sai", layout, prefix, optional={prefix + "logit_scale": ()})


def _t5(d: Derivation) -> None:
    hub = d.layout("t5-xxl")
    d.add("t5-xxl/hub", hub, optional={"encoder.embed_tokens.weight": (32128, 4096)})
    original = lay.prefixed(hub, SAI_TEXT.format("t5xxl"))
    x.check_sd3_t5(original, d.model("t5-xxl"), hub)
    _sai_text(d, "t5-xxl", hub, "t5xxl")


def _loras(d: Derivation) -> None:
    clip_l = d.sources["clip-l/hub"].layout
    for name in ("sd1", "sd2"):
        unet = d.layout(name)
        kohya = lora.kohya_lora(unet, "lora_unet_", lora.unet_transformer_modules)
        kohya |= lora.kohya_lora(clip_l, "lora_te_", lora.clip_encoder_modules)  # type: ignore[arg-type]
        _add_lora(d, f"lora-{name}/kohya", kohya)
        _add_lora(d, f"lora-{name}/peft", lora.peft_lora(unet, "unet.", PEFT_TARGETS["unet"]))
    _sdxl_loras(d, clip_l)
    for name in ("sd3", "sd35-large", "sd35-medium"):
        sai = lay.renamed(d.layout(name), lay.sai_mmdit_rename)
        _add_lora(
            d, f"lora-{name}/kohya", lora.kohya_lora(sai, "lora_unet_", lora.mmdit_block_modules)
        )
        peft = lora.peft_lora(d.layout(name), "transformer.", PEFT_TARGETS["sd3"])
        _add_lora(d, f"lora-{name}/peft", peft)
    for name in ("flux-dev", "flux-schnell"):
        _flux_loras(d, name, clip_l)


def _sdxl_loras(d: Derivation, clip_l: dict[str, tuple[int | None, ...]]) -> None:
    te = lora.kohya_lora(clip_l, "lora_te1_", lora.clip_encoder_modules)  # type: ignore[arg-type]
    te |= lora.kohya_lora(d.layout("clip-g"), "lora_te2_", lora.clip_encoder_modules)
    unet = d.layout("sdxl")
    sgm = lay.renamed(unet, lay.ldm_unet_rename(MODELS["sdxl"].config))
    kohya = lora.kohya_lora(sgm, "lora_unet_", lora.unet_transformer_modules)
    _add_lora(d, "lora-sdxl/kohya", kohya | te)
    named = lora.kohya_lora(unet, "lora_unet_", lora.unet_transformer_modules)
    _add_lora(d, "lora-sdxl/kohya-diffusers", named | te)
    _add_lora(d, "lora-sdxl/peft", lora.peft_lora(unet, "unet.", PEFT_TARGETS["unet"]))


def _flux_loras(d: Derivation, name: str, clip_l: dict[str, tuple[int | None, ...]]) -> None:
    layout = d.layout(name)
    bfl = lay.renamed(layout, lay.bfl_flux_rename)
    kohya = lora.kohya_lora(bfl, "lora_unet_", lora.flux_block_modules)
    _check_flux_conversion(kohya, layout, name)
    te = lora.kohya_lora(clip_l, "lora_te1_", lora.clip_encoder_modules)  # type: ignore[arg-type]
    _add_lora(d, f"lora-{name}/kohya", kohya | te)
    _add_lora(d, f"lora-{name}/peft", lora.peft_lora(layout, "transformer.", PEFT_TARGETS["flux"]))


def _check_flux_conversion(kohya: lora.LoraLayout, layout: Layout, name: str) -> None:
    """diffusers reads the kohya FLUX layout into peft keys on real modules of the right size."""
    for key, shape in lora.diffusers_flux_conversion(kohya).items():
        module, _, part = key.removeprefix("transformer.").rpartition(".lora_")
        weight = layout.get(f"{module}.weight")
        dim = 1 if part == "A.weight" else 0
        if weight is None or shape[dim] != weight[dim]:
            raise x.CrossCheckError(f"{name} kohya LoRA: diffusers made {key} {shape}")


def _add_lora(d: Derivation, name: str, layout: lora.LoraLayout) -> None:
    d.sources[name] = Source(dict(layout), is_lora=True)
