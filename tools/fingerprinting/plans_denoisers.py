"""Fingerprint plans of the denoisers: SD 1/2/XL UNets, SD3 MMDiTs, FLUX.1 transformers."""

from __future__ import annotations

from tools.fingerprinting.plan import Print

# ---- UNets --------------------------------------------------------------------------------

_SD_LDM_REQUIRED = (
    "input_blocks.0.0.weight",
    "input_blocks.1.1.proj_in.weight",
    "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
    "middle_block.1.transformer_blocks.0.attn2.to_k.weight",
    "output_blocks.11.0.skip_connection.weight",
    "out.2.weight",
)
_SD_DIFFUSERS_REQUIRED = (
    "conv_in.weight",
    "down_blocks.0.attentions.0.proj_in.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
    "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
    "up_blocks.3.resnets.2.conv_shortcut.weight",
    "conv_out.weight",
)


def sd_unet(name: str, text_encoder: str, sd_mecha_config: str | None) -> tuple[Print, ...]:
    return (
        Print(
            f"{name}/ldm",
            "ldm",
            "unet",
            _SD_LDM_REQUIRED,
            ("label_emb.0.0.weight",),
            file=(f"{text_encoder}/ldm", "kl-f8/ldm"),
            sd_mecha_config=sd_mecha_config,
        ),
        Print(
            f"{name}/diffusers",
            "diffusers",
            "unet",
            _SD_DIFFUSERS_REQUIRED,
            ("add_embedding.linear_1.weight",),
            file=(),
        ),
    )


SDXL_BASE = (
    Print(
        "sdxl/ldm",
        "sgm",
        "unet",
        (
            "input_blocks.0.0.weight",
            "label_emb.0.0.weight",
            "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight",
            "input_blocks.7.1.transformer_blocks.9.attn2.to_k.weight",
            "middle_block.1.transformer_blocks.9.attn2.to_k.weight",
            "out.2.weight",
        ),
        ("input_blocks.11.0.in_layers.0.weight",),
        file=("clip-l/sgm", "clip-g/sgm", "kl-f8-sdxl/ldm"),
        sd_mecha_config="sdxl-sgm",
    ),
    Print(
        "sdxl/diffusers",
        "diffusers",
        "unet",
        (
            "conv_in.weight",
            "add_embedding.linear_1.weight",
            "down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k.weight",
            "down_blocks.2.attentions.0.transformer_blocks.9.attn2.to_k.weight",
            "mid_block.attentions.0.transformer_blocks.9.attn2.to_k.weight",
            "conv_out.weight",
        ),
        ("down_blocks.3.resnets.0.conv1.weight",),
        file=(),
    ),
)
SDXL_REFINER = (
    Print(
        "sdxl-refiner/ldm",
        "sgm",
        "unet",
        (
            "input_blocks.0.0.weight",
            "label_emb.0.0.weight",
            "input_blocks.4.1.transformer_blocks.3.attn2.to_k.weight",
            "middle_block.1.transformer_blocks.3.attn2.to_k.weight",
            "out.2.weight",
        ),
        ("input_blocks.7.1.transformer_blocks.4.attn1.to_q.weight",),
        file=("clip-g/sgm-refiner", "kl-f8-sdxl/ldm"),
    ),
    Print(
        "sdxl-refiner/diffusers",
        "diffusers",
        "unet",
        (
            "conv_in.weight",
            "add_embedding.linear_1.weight",
            "down_blocks.1.attentions.0.transformer_blocks.3.attn2.to_k.weight",
            "mid_block.attentions.0.transformer_blocks.3.attn2.to_k.weight",
            "conv_out.weight",
        ),
        ("down_blocks.2.attentions.0.transformer_blocks.4.attn1.to_q.weight",),
        file=(),
    ),
)

# ---- Stable Diffusion 3 / 3.5 ---------------------------------------------------------------


def mmdit(
    name: str, last: int, extra: tuple[str, ...], forbidden: tuple[int, ...]
) -> tuple[Print, ...]:
    """SD3-family prints; ``extra`` names the distinguishing features (qk-norm, attn2), and
    ``forbidden`` which rival features (0: qk-norm, 1: attn2, 2: a 25th block) rule it out."""
    sai_extra = {
        "qk": "joint_blocks.0.x_block.attn.ln_q.weight",
        "attn2": "joint_blocks.0.x_block.attn2.qkv.weight",
    }
    hf_extra = {
        "qk": "transformer_blocks.0.attn.norm_q.weight",
        "attn2": "transformer_blocks.0.attn2.to_q.weight",
    }
    sai_rivals = (sai_extra["qk"], sai_extra["attn2"], "joint_blocks.24.x_block.attn.qkv.weight")
    hf_rivals = (hf_extra["qk"], hf_extra["attn2"], "transformer_blocks.24.attn.to_q.weight")
    sai = (
        "pos_embed",
        "x_embedder.proj.weight",
        "context_embedder.weight",
        "y_embedder.mlp.0.weight",
        "joint_blocks.0.x_block.attn.qkv.weight",
        f"joint_blocks.{last}.context_block.adaLN_modulation.1.weight",
        "final_layer.linear.weight",
        *(sai_extra[e] for e in extra),
    )
    hf = (
        "pos_embed.pos_embed",
        "pos_embed.proj.weight",
        "context_embedder.weight",
        "time_text_embed.text_embedder.linear_1.weight",
        "transformer_blocks.0.attn.to_q.weight",
        f"transformer_blocks.{last}.norm1_context.linear.weight",
        "proj_out.weight",
        *(hf_extra[e] for e in extra),
    )
    return (
        Print(f"{name}/sai", "sai", "transformer", sai, tuple(sai_rivals[i] for i in forbidden)),
        Print(
            f"{name}/diffusers",
            "diffusers",
            "transformer",
            hf,
            tuple(hf_rivals[i] for i in forbidden),
        ),
    )


# ---- FLUX.1 -------------------------------------------------------------------------------


def flux(name: str, guidance: bool) -> tuple[Print, ...]:
    bfl = [
        "img_in.weight",
        "txt_in.weight",
        "time_in.in_layer.weight",
        "vector_in.in_layer.weight",
        "double_blocks.18.img_attn.qkv.weight",
        "single_blocks.37.linear1.weight",
        "final_layer.linear.weight",
    ]
    hf = [
        "x_embedder.weight",
        "context_embedder.weight",
        "time_text_embed.timestep_embedder.linear_1.weight",
        "time_text_embed.text_embedder.linear_1.weight",
        "transformer_blocks.18.attn.to_q.weight",
        "single_transformer_blocks.37.proj_mlp.weight",
        "proj_out.weight",
    ]
    bfl_guidance, hf_guidance = (
        "guidance_in.in_layer.weight",
        "time_text_embed.guidance_embedder.linear_1.weight",
    )
    if guidance:
        return (
            Print(f"{name}/bfl", "bfl", "transformer", (*bfl, bfl_guidance)),
            Print(f"{name}/diffusers", "diffusers", "transformer", (*hf, hf_guidance)),
        )
    return (
        Print(f"{name}/bfl", "bfl", "transformer", tuple(bfl), (bfl_guidance,)),
        Print(f"{name}/diffusers", "diffusers", "transformer", tuple(hf), (hf_guidance,)),
    )
