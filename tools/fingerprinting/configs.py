"""The families' published configurations, as their hub ``config.json`` files state them, and
the meta-device models built from them.

Only the fields that decide tensor names and shapes matter here; the dicts keep the published
values of those fields (defaults the published files rely on are left to the classes). Nothing is
downloaded: the values are written out, and every model is built with ``torch.device("meta")``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

Layout = dict[str, tuple[int, ...]]

_CROSS_ATTN_DOWN = "CrossAttnDownBlock2D"
_CROSS_ATTN_UP = "CrossAttnUpBlock2D"

# stable-diffusion-v1-5/stable-diffusion-v1-5, unet/config.json
UNET_SD1: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 768,
    "down_block_types": [_CROSS_ATTN_DOWN, _CROSS_ATTN_DOWN, _CROSS_ATTN_DOWN, "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", _CROSS_ATTN_UP, _CROSS_ATTN_UP, _CROSS_ATTN_UP],
}

# stabilityai/stable-diffusion-2-1, unet/config.json (2-1-base differs only in sample_size 64 and
# upcast_attention false, neither of which changes a tensor).
UNET_SD2: dict[str, Any] = {
    **UNET_SD1,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "dual_cross_attention": False,
    "only_cross_attention": False,
    "sample_size": 96,
    "upcast_attention": True,
    "use_linear_projection": True,
}

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json
UNET_SDXL_BASE: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", _CROSS_ATTN_DOWN, _CROSS_ATTN_DOWN],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": [_CROSS_ATTN_UP, _CROSS_ATTN_UP, "UpBlock2D"],
    "use_linear_projection": True,
}

# stabilityai/stable-diffusion-xl-refiner-1.0, unet/config.json
UNET_SDXL_REFINER: dict[str, Any] = {
    **UNET_SDXL_BASE,
    "attention_head_dim": [6, 12, 24, 24],
    "block_out_channels": [384, 768, 1536, 1536],
    "cross_attention_dim": 1280,
    "down_block_types": ["DownBlock2D", _CROSS_ATTN_DOWN, _CROSS_ATTN_DOWN, "DownBlock2D"],
    "projection_class_embeddings_input_dim": 2560,
    "transformer_layers_per_block": 4,
    "up_block_types": ["UpBlock2D", _CROSS_ATTN_UP, _CROSS_ATTN_UP, "UpBlock2D"],
}

# stabilityai/stable-diffusion-3-medium-diffusers, transformer/config.json
SD3_MEDIUM: dict[str, Any] = {
    "attention_head_dim": 64,
    "caption_projection_dim": 1536,
    "in_channels": 16,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 24,
    "out_channels": 16,
    "patch_size": 2,
    "pooled_projection_dim": 2048,
    "pos_embed_max_size": 192,
    "sample_size": 128,
}

# stabilityai/stable-diffusion-3.5-large, transformer/config.json
SD35_LARGE: dict[str, Any] = {
    **SD3_MEDIUM,
    "caption_projection_dim": 2432,
    "num_attention_heads": 38,
    "num_layers": 38,
    "qk_norm": "rms_norm",
}

# stabilityai/stable-diffusion-3.5-medium, transformer/config.json (MMDiT-X)
SD35_MEDIUM: dict[str, Any] = {
    **SD3_MEDIUM,
    "dual_attention_layers": list(range(13)),
    "pos_embed_max_size": 384,
    "qk_norm": "rms_norm",
}

# black-forest-labs/FLUX.1-dev, transformer/config.json (FLUX.1-schnell: guidance_embeds false)
FLUX_DEV: dict[str, Any] = {
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": True,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}
FLUX_SCHNELL: dict[str, Any] = {**FLUX_DEV, "guidance_embeds": False}

# stable-diffusion-v1-5/stable-diffusion-v1-5, vae/config.json
VAE_KL_F8: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# stabilityai/sdxl-vae, config.json: the same network, another latent scale.
VAE_KL_F8_SDXL: dict[str, Any] = {
    **VAE_KL_F8,
    "force_upcast": True,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
}
# stabilityai/stable-diffusion-3-medium-diffusers, vae/config.json
VAE_C16_SD3: dict[str, Any] = {
    **VAE_KL_F8,
    "force_upcast": True,
    "latent_channels": 16,
    "sample_size": 1024,
    "scaling_factor": 1.5305,
    "shift_factor": 0.0609,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}
# black-forest-labs/FLUX.1-schnell, vae/config.json
VAE_C16_FLUX: dict[str, Any] = {**VAE_C16_SD3, "scaling_factor": 0.3611, "shift_factor": 0.1159}

_CLIP_TEXT: dict[str, Any] = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "pad_token_id": 1,
    "vocab_size": 49408,
}
# openai/clip-vit-large-patch14 text tower (stable-diffusion-v1-5, text_encoder/config.json)
CLIP_L: dict[str, Any] = {
    **_CLIP_TEXT,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
}
# laion/CLIP-ViT-bigG-14-laion2B-39B-b160k text tower (stable-diffusion-xl-base-1.0,
# text_encoder_2/config.json)
CLIP_G: dict[str, Any] = {
    **_CLIP_TEXT,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}
# laion/CLIP-ViT-H-14-laion2B-s32B-b79K text tower as SD 2 uses it: the penultimate layer, so the
# diffusers copy keeps 23 of its 24 layers (stable-diffusion-2-1, text_encoder/config.json).
CLIP_H: dict[str, Any] = {
    **_CLIP_TEXT,
    "hidden_act": "gelu",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 23,
    "projection_dim": 512,
}
CLIP_H_LAYERS_IN_CHECKPOINT = 24
# google/t5-v1_1-xxl encoder (FLUX.1-dev, text_encoder_2/config.json)
T5_XXL: dict[str, Any] = {
    "d_ff": 10240,
    "d_kv": 64,
    "d_model": 4096,
    "dense_act_fn": "gelu_new",
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "num_decoder_layers": 24,
    "num_heads": 64,
    "num_layers": 24,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
    "vocab_size": 32128,
}


class ModelSpec(NamedTuple):
    """A network to build: its library class and published configuration."""

    library: str  # "diffusers" or "transformers"
    class_name: str
    config: dict[str, Any]


def build(spec: ModelSpec) -> torch.nn.Module:
    """The network on the meta device: real classes, real shapes, no memory, no download.
    Weight initialisation is switched off (transformers' ``no_init_weights``): it only costs time
    on meta tensors."""
    from transformers.initialization import no_init_weights

    with torch.device("meta"), no_init_weights():
        if spec.library == "diffusers":
            import diffusers

            cls = getattr(diffusers, spec.class_name)
            return cls.from_config(spec.config)  # type: ignore[no-any-return]
        import transformers

        config_cls = transformers.T5Config if spec.class_name.startswith("T5") else None
        config_cls = config_cls or transformers.CLIPTextConfig
        model = getattr(transformers, spec.class_name)(config_cls(**spec.config))
    # no_init_weights also skips tying (T5's encoder.embed_tokens is shared.weight): tie here.
    model.tie_weights()
    return model  # type: ignore[no-any-return]


def state_layout(model: torch.nn.Module) -> Layout:
    """Tensor names and shapes of ``model``'s state dict as its library saves it: tied copies
    (T5's ``encoder.embed_tokens``) are left out."""
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in tied}


def parameter_count(layout: Layout) -> int:
    """Total number of values in ``layout``."""
    total = 0
    for shape in layout.values():
        count = 1
        for size in shape:
            count *= size
        total += count
    return total
