"""Fingerprint plans of LoRAs: kohya and diffusers/peft layouts per base model, any rank."""

from __future__ import annotations

from tools.fingerprinting.plan import Print

# ---- LoRAs --------------------------------------------------------------------------------


def _lora_pair(stem: str) -> tuple[str, str]:
    return f"{stem}.lora_down.weight", f"{stem}.lora_up.weight"


def _kohya(source: str, stems: tuple[str, ...], te: str | None) -> Print:
    required = tuple(k for stem in stems for k in _lora_pair(stem))
    optional = [f"{stems[0]}.alpha"]
    if te is not None:
        optional.append(f"{te}text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight")
    return Print(source, "kohya-lora", None, required, optional=tuple(optional))


def _peft(source: str, modules: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> Print:
    required = tuple(f"{m}.lora_{part}.weight" for m in modules for part in ("A", "B"))
    return Print(
        source, "peft-lora", None, required, tuple(f"{m}.lora_A.weight" for m in forbidden)
    )


_SD_KOHYA = (
    "lora_unet_down_blocks_0_attentions_0_proj_in",
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
    "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
)
_SD_PEFT = (
    "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
    "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q",
)
_XL_PEFT = (
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q",
)


def _sd_lora(name: str) -> tuple[Print, ...]:
    return (
        _kohya(f"lora-{name}/kohya", _SD_KOHYA, "lora_te_"),
        _peft(f"lora-{name}/peft", _SD_PEFT),
    )


SDXL_LORA = (
    _kohya(
        "lora-sdxl/kohya",
        (
            "lora_unet_input_blocks_4_1_proj_in",
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
            "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k",
        ),
        "lora_te1_",
    ),
    _kohya(
        "lora-sdxl/kohya-diffusers",
        (
            "lora_unet_down_blocks_1_attentions_0_proj_in",
            "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
            "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
        ),
        "lora_te1_",
    ),
    _peft("lora-sdxl/peft", _XL_PEFT),
)


def _sd3_lora(name: str, last: int, attn2: bool | None) -> tuple[Print, ...]:
    """``attn2``: True requires the MMDiT-X second attention, False forbids it, None ignores it."""
    kohya = [
        "lora_unet_joint_blocks_0_x_block_attn_qkv",
        "lora_unet_joint_blocks_0_context_block_attn_qkv",
        f"lora_unet_joint_blocks_{last}_x_block_mlp_fc1",
    ]
    peft = [
        "transformer.transformer_blocks.0.attn.to_q",
        "transformer.transformer_blocks.0.attn.add_k_proj",
        f"transformer.transformer_blocks.{last}.attn.to_out.0",
    ]
    kohya_attn2, peft_attn2 = (
        "lora_unet_joint_blocks_0_x_block_attn2_qkv",
        "transformer.transformer_blocks.0.attn2.to_q",
    )
    if attn2:
        kohya.append(kohya_attn2)
        peft.append(peft_attn2)
    k = _kohya(f"lora-{name}/kohya", tuple(kohya), None)
    if attn2 is False:
        k = k._replace(forbidden=(f"{kohya_attn2}.lora_down.weight",))
    return k, _peft(f"lora-{name}/peft", tuple(peft), (peft_attn2,) if attn2 is False else ())


def _flux_lora(name: str) -> tuple[Print, ...]:
    return (
        _kohya(
            f"lora-{name}/kohya",
            (
                "lora_unet_double_blocks_0_img_attn_qkv",
                "lora_unet_double_blocks_18_txt_mlp_0",
                "lora_unet_single_blocks_37_linear2",
            ),
            "lora_te1_",
        ),
        _peft(
            f"lora-{name}/peft",
            (
                "transformer.transformer_blocks.0.attn.to_q",
                "transformer.transformer_blocks.18.ff_context.net.0.proj",
                "transformer.single_transformer_blocks.37.attn.to_q",
            ),
        ),
    )


LORA_FAMILIES: dict[str, tuple[str, tuple[Print, ...]]] = {
    "stable-diffusion-v1": ("mir:info.unet.stable-diffusion-v1", _sd_lora("sd1")),
    "stable-diffusion-2": ("mir:info.unet.stable-diffusion-2", _sd_lora("sd2")),
    "stable-diffusion-xl": ("mir:info.unet.stable-diffusion-xl", SDXL_LORA),
    "stable-diffusion-3": ("mir:info.dit.stable-diffusion-3", _sd3_lora("sd3", 23, False)),
    "stable-diffusion-3-5-large": (
        "mir:info.dit.stable-diffusion-3:3-5-large",
        _sd3_lora("sd35-large", 37, None),
    ),
    "stable-diffusion-3-5-medium": (
        "mir:info.dit.stable-diffusion-3:3-5-medium",
        _sd3_lora("sd35-medium", 23, True),
    ),
    "flux-1-dev": ("mir:info.dit.flux-1-dev", _flux_lora("flux-dev")),
    "flux-1-schnell": ("mir:info.dit.flux-1-schnell", _flux_lora("flux-schnell")),
}
