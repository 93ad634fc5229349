"""Fingerprint plans of the autoencoders and text encoders."""

from __future__ import annotations

from tools.fingerprinting.plan import Print

# ---- autoencoders -------------------------------------------------------------------------

_VAE_LDM = (
    "encoder.conv_in.weight",
    "encoder.conv_out.weight",
    "decoder.conv_in.weight",
    "decoder.conv_out.weight",
)
_VAE_HF = (*_VAE_LDM, "encoder.mid_block.attentions.0.to_q.weight")


def kl_f8(name: str) -> tuple[Print, ...]:
    ldm = (*_VAE_LDM, "quant_conv.weight", "post_quant_conv.weight")
    return (
        Print(f"{name}/ldm", "ldm", "vae", ldm),
        Print(f"{name}/file", "ldm", "vae", ldm),
        Print(f"{name}/diffusers", "diffusers", "vae", (*_VAE_HF, "quant_conv.weight")),
    )


def c16(name: str, original: str, whole_file: bool) -> tuple[Print, ...]:
    no_quant = ("quant_conv.weight", "post_quant_conv.weight")
    source = f"{name}/ldm" if whole_file else f"{name}/file"
    return (
        Print(source, original, "vae", _VAE_LDM, no_quant),
        Print(f"{name}/diffusers", "diffusers", "vae", _VAE_HF, no_quant),
    )


# ---- text encoders ------------------------------------------------------------------------

_CLIP_EMBEDDINGS = (
    "text_model.embeddings.token_embedding.weight",
    "text_model.embeddings.position_embedding.weight",
)
_IDS = ("text_model.embeddings.position_ids",)


def _sai_text(name: str, encoder: str, last_layer: str) -> Print:
    """A CLIP text encoder inside a Stable Diffusion 3 all-in-one file (text_encoders.<name>.)."""
    required = ("transformer." + key for key in (*_CLIP_EMBEDDINGS, last_layer))
    component = "text_encoder" if encoder == "clip_l" else "text_encoder_2"
    return Print(f"{name}/sai", "sai", component, tuple(required), optional=("logit_scale",))


CLIP_L = (
    Print(
        "clip-l/hub",
        "transformers",
        "text_encoder",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.11.mlp.fc1.weight",
            "text_model.final_layer_norm.weight",
        ),
        ("text_model.encoder.layers.12.mlp.fc1.weight", "text_projection.weight"),
        _IDS,
    ),
    Print(
        "clip-l/saved",
        "transformers",
        "text_encoder",
        (
            "embeddings.token_embedding.weight",
            "encoder.layers.11.mlp.fc1.weight",
            "final_layer_norm.weight",
        ),
        ("encoder.layers.12.mlp.fc1.weight",),
    ),
    Print(
        "clip-l/ldm",
        "ldm",
        "text_encoder",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.0.self_attn.q_proj.weight",
            "text_model.encoder.layers.11.mlp.fc1.weight",
        ),
        optional=_IDS,
    ),
    # SDXL files may lack the last layer (SDXL reads the penultimate one): not required there.
    Print(
        "clip-l/sgm",
        "sgm",
        "text_encoder",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.0.self_attn.q_proj.weight",
            "text_model.encoder.layers.10.mlp.fc1.weight",
        ),
        optional=_IDS,
    ),
)
CLIP_L_PROJECTION = (
    Print(
        "clip-l-proj/hub",
        "transformers",
        "text_encoder",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.11.mlp.fc1.weight",
            "text_projection.weight",
        ),
        ("text_model.encoder.layers.12.mlp.fc1.weight",),
    ),
    _sai_text("clip-l-proj", "clip_l", "text_model.encoder.layers.11.mlp.fc1.weight"),
)
_OPEN_CLIP_G = (
    "token_embedding.weight",
    "positional_embedding",
    "transformer.resblocks.0.attn.in_proj_weight",
    "transformer.resblocks.31.mlp.c_fc.weight",
    "ln_final.weight",
)
CLIP_G = (
    Print(
        "clip-g/hub",
        "transformers",
        "text_encoder_2",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.31.mlp.fc1.weight",
            "text_projection.weight",
        ),
    ),
    Print("clip-g/sgm", "sgm", "text_encoder_2", _OPEN_CLIP_G, optional=("logit_scale",)),
    Print("clip-g/sgm-refiner", "sgm", "text_encoder_2", _OPEN_CLIP_G, optional=("logit_scale",)),
    _sai_text("clip-g", "clip_g", "text_model.encoder.layers.31.mlp.fc1.weight"),
)
CLIP_H = (
    Print(
        "clip-h/hub",
        "transformers",
        "text_encoder",
        (
            *_CLIP_EMBEDDINGS,
            "text_model.encoder.layers.22.mlp.fc1.weight",
            "text_model.final_layer_norm.weight",
        ),
        ("text_model.encoder.layers.23.mlp.fc1.weight", "text_projection.weight"),
    ),
    Print(
        "clip-h/saved",
        "transformers",
        "text_encoder",
        (
            "embeddings.token_embedding.weight",
            "encoder.layers.22.mlp.fc1.weight",
            "final_layer_norm.weight",
        ),
    ),
    Print(
        "clip-h/ldm",
        "ldm",
        "text_encoder",
        (
            "token_embedding.weight",
            "positional_embedding",
            "transformer.resblocks.0.attn.in_proj_weight",
            "transformer.resblocks.23.mlp.c_fc.weight",
            "ln_final.weight",
        ),
        optional=("logit_scale",),
    ),
)
T5_XXL = (
    Print(
        "t5-xxl/hub",
        "transformers",
        "text_encoder",
        (
            "shared.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "encoder.block.23.layer.1.DenseReluDense.wi_1.weight",
            "encoder.final_layer_norm.weight",
        ),
        optional=("encoder.embed_tokens.weight",),
    ),
    Print(
        "t5-xxl/sai",
        "sai",
        "text_encoder_3",
        (
            "transformer.shared.weight",
            "transformer.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "transformer.encoder.block.23.layer.1.DenseReluDense.wi_1.weight",
        ),
        optional=("logit_scale",),
    ),
)
