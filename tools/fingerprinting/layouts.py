"""Original single-file layouts (ldm, sgm, open_clip, SAI MMDiT, BFL FLUX) derived from the
diffusers/transformers layouts by inverting diffusers' own conversion mappings.

Each function takes the layout a diffusers/transformers model saves and returns the layout of the
original checkpoint, key for key. Where the original layout fuses tensors (q, k and v into one
``qkv``), the parts' shapes are concatenated along the first axis, exactly as the original code
stores them. ``tools/fingerprinting/crosscheck.py`` then runs diffusers' forward conversions on
tensors of these shapes and loads the result into the real model, strictly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

from tools.fingerprinting.configs import Layout

Rename = Callable[[str], str]

_RESNET_TO_LDM = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)


def prefixed(layout: Layout, prefix: str) -> Layout:
    """``layout`` with every key under ``prefix``."""
    return {prefix + key: shape for key, shape in layout.items()}


def renamed(layout: Layout, rename: Rename) -> Layout:
    """Apply ``rename`` to every key; keys renamed alike are fused along the first axis."""
    fused: dict[str, list[tuple[int, ...]]] = {}
    for key, shape in layout.items():
        fused.setdefault(rename(key), []).append(shape)
    return {key: _concatenated(key, parts) for key, parts in fused.items()}


def _concatenated(key: str, parts: list[tuple[int, ...]]) -> tuple[int, ...]:
    if any(part[1:] != parts[0][1:] for part in parts):
        raise ValueError(f"cannot fuse {key}: shapes {parts}")
    return (sum(part[0] for part in parts), *parts[0][1:])


# ---- ldm / sgm UNet -------------------------------------------------------------------------


def ldm_unet_rename(config: dict[str, object]) -> Rename:
    """diffusers UNet key -> ldm/sgm key (the inverse of ``convert_ldm_unet_checkpoint``)."""
    per_block = int(str(config["layers_per_block"])) + 1
    # diffusers' table is keyed by the diffusers name: it already reads in our direction.
    fixed = dict(DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"])
    fixed.update(DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"])
    attention_levels = {
        i for i, kind in enumerate(_list(config["up_block_types"])) if kind.startswith("CrossAttn")
    }

    def rename(key: str) -> str:
        if key in fixed:
            return fixed[key]
        return _ldm_block_key(key, per_block, attention_levels)

    return rename


def _list(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(item) for item in value]


def _ldm_block_key(key: str, per_block: int, attention_levels: set[int]) -> str:
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = 1 + int(m[1]) * per_block + int(m[3])
        return _ldm_inner(f"input_blocks.{index}", m[2], m[4])
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per_block}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        return _ldm_resnet(f"middle_block.{2 * int(m[1])}", m[2])
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.*)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        index = int(m[1]) * per_block + int(m[3])
        return _ldm_inner(f"output_blocks.{index}", m[2], m[4])
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        index = int(m[1]) * per_block + per_block - 1
        slot = 2 if int(m[1]) in attention_levels else 1
        return f"output_blocks.{index}.{slot}.conv.{m[2]}"
    raise ValueError(f"no ldm name for UNet key {key}")


def _ldm_inner(block: str, kind: str, rest: str) -> str:
    if kind == "attentions":
        return f"{block}.1.{rest}"
    return _ldm_resnet(f"{block}.0", rest)


def _ldm_resnet(block: str, rest: str) -> str:
    for diffusers, ldm in _RESNET_TO_LDM:
        if rest.startswith(diffusers + "."):
            return f"{block}.{ldm}{rest[len(diffusers) :]}"
    raise ValueError(f"no ldm name for resnet tensor {block}.{rest}")


# ---- ldm VAE (also the SAI SD3 and BFL FLUX autoencoders) ------------------------------------

_VAE_ATTENTION = (
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
)


def ldm_vae_layout(layout: Layout, levels: int) -> Layout:
    """The ldm autoencoder layout of a diffusers ``AutoencoderKL`` layout: the mid-block attention
    projections are 1x1 convolutions there (``conv_attn_to_linear`` undoes that)."""
    fixed = dict(DIFFUSERS_TO_LDM_MAPPING["vae"])
    result: Layout = {}
    for key, shape in layout.items():
        if key in fixed:
            result[fixed[key]] = shape
            continue
        name = _ldm_vae_key(key, levels)
        is_projection = ".attn_1." in name and not name.split(".attn_1.")[1].startswith("norm")
        result[name] = (*shape, 1, 1) if is_projection and name.endswith("weight") else shape
    return result


def _ldm_vae_key(key: str, levels: int) -> str:
    part, _, rest = key.partition(".")
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
        return f"{part}.down.{m[1]}.block.{m[2]}.{_nin(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", rest):
        return f"{part}.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", rest):
        return f"{part}.up.{levels - 1 - int(m[1])}.block.{m[2]}.{_nin(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", rest):
        return f"{part}.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.*)", rest):
        return f"{part}.mid.block_{int(m[1]) + 1}.{_nin(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.*)", rest):
        inner = m[1]
        for diffusers, ldm in _VAE_ATTENTION:
            inner = ldm + inner[len(diffusers) :] if inner.startswith(diffusers) else inner
        return f"{part}.mid.attn_1.{inner}"
    raise ValueError(f"no ldm name for VAE key {key}")


def _nin(rest: str) -> str:
    return rest.replace("conv_shortcut.", "nin_shortcut.")


# ---- CLIP text encoders ---------------------------------------------------------------------


def hub_clip_layout(layout: Layout) -> Layout:
    """A CLIP text tower as published on the hub (``text_model.`` …): transformers 5 drops the
    ``text_model.`` level of ``CLIPTextModel`` and maps it back on load."""
    if any(key.startswith("text_model.") for key in layout):
        return dict(layout)
    return prefixed(layout, "text_model.")


_OPEN_CLIP_LAYER = (
    ("self_attn.q_proj.", "attn.in_proj_"),
    ("self_attn.k_proj.", "attn.in_proj_"),
    ("self_attn.v_proj.", "attn.in_proj_"),
    ("self_attn.out_proj.", "attn.out_proj."),
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
)
_OPEN_CLIP_FIXED = {
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "text_projection.weight": "text_projection",
}


def open_clip_layout(hub: Layout) -> Layout:
    """The open_clip text-tower layout of a hub CLIP layout (the inverse of diffusers'
    ``convert_open_clip_checkpoint``): q, k, v fused into ``in_proj_*``; the projection is stored
    transposed as a bare ``text_projection`` tensor."""
    result = renamed(hub, _open_clip_key)
    if "text_projection" in result:
        width, dim = result["text_projection"]
        result["text_projection"] = (dim, width)
    return result


def _open_clip_key(key: str) -> str:
    if key in _OPEN_CLIP_FIXED:
        return _OPEN_CLIP_FIXED[key]
    m = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key)
    if m is None:
        raise ValueError(f"no open_clip name for CLIP key {key}")
    rest = m[2]
    for hub, original in _OPEN_CLIP_LAYER:
        if rest.startswith(hub):
            return f"transformer.resblocks.{m[1]}.{original}{rest[len(hub) :]}"
    raise ValueError(f"no open_clip name for CLIP key {key}")


def open_clip_extra_layer(layout: Layout, index: int) -> Layout:
    """One more residual block shaped like block 0 (SD 2 keeps all 24 blocks of ViT-H/14's text
    tower in its checkpoint although it stops at the penultimate one)."""
    first = "transformer.resblocks.0."
    return {
        f"transformer.resblocks.{index}.{key[len(first) :]}": shape
        for key, shape in layout.items()
        if key.startswith(first)
    }


# ---- Stable Diffusion 3 (SAI MMDiT) ---------------------------------------------------------

_SAI_FIXED = {
    "pos_embed.pos_embed": "pos_embed",
    "context_embedder.weight": "context_embedder.weight",
    "context_embedder.bias": "context_embedder.bias",
}
_SAI_PREFIXES = (
    ("pos_embed.proj.", "x_embedder.proj."),
    ("time_text_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0."),
    ("time_text_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2."),
    ("time_text_embed.text_embedder.linear_1.", "y_embedder.mlp.0."),
    ("time_text_embed.text_embedder.linear_2.", "y_embedder.mlp.2."),
    ("proj_out.", "final_layer.linear."),
    ("norm_out.linear.", "final_layer.adaLN_modulation.1."),
)
_SAI_BLOCK = (
    ("attn.to_q.", "x_block.attn.qkv."),
    ("attn.to_k.", "x_block.attn.qkv."),
    ("attn.to_v.", "x_block.attn.qkv."),
    ("attn.add_q_proj.", "context_block.attn.qkv."),
    ("attn.add_k_proj.", "context_block.attn.qkv."),
    ("attn.add_v_proj.", "context_block.attn.qkv."),
    ("attn.norm_q.", "x_block.attn.ln_q."),
    ("attn.norm_k.", "x_block.attn.ln_k."),
    ("attn.norm_added_q.", "context_block.attn.ln_q."),
    ("attn.norm_added_k.", "context_block.attn.ln_k."),
    ("attn.to_out.0.", "x_block.attn.proj."),
    ("attn.to_add_out.", "context_block.attn.proj."),
    ("attn2.to_q.", "x_block.attn2.qkv."),
    ("attn2.to_k.", "x_block.attn2.qkv."),
    ("attn2.to_v.", "x_block.attn2.qkv."),
    ("attn2.norm_q.", "x_block.attn2.ln_q."),
    ("attn2.norm_k.", "x_block.attn2.ln_k."),
    ("attn2.to_out.0.", "x_block.attn2.proj."),
    ("norm1.linear.", "x_block.adaLN_modulation.1."),
    ("norm1_context.linear.", "context_block.adaLN_modulation.1."),
    ("ff.net.0.proj.", "x_block.mlp.fc1."),
    ("ff.net.2.", "x_block.mlp.fc2."),
    ("ff_context.net.0.proj.", "context_block.mlp.fc1."),
    ("ff_context.net.2.", "context_block.mlp.fc2."),
)


def sai_mmdit_rename(key: str) -> str:
    """diffusers ``SD3Transformer2DModel`` key -> SAI MMDiT key (the inverse of
    ``convert_sd3_transformer_checkpoint_to_diffusers``)."""
    if key in _SAI_FIXED:
        return _SAI_FIXED[key]
    return _by_prefix(
        key, _SAI_PREFIXES, r"transformer_blocks\.(\d+)\.", "joint_blocks", _SAI_BLOCK
    )


# ---- FLUX.1 (BFL) ---------------------------------------------------------------------------

_BFL_PREFIXES = (
    ("x_embedder.", "img_in."),
    ("context_embedder.", "txt_in."),
    ("time_text_embed.timestep_embedder.linear_1.", "time_in.in_layer."),
    ("time_text_embed.timestep_embedder.linear_2.", "time_in.out_layer."),
    ("time_text_embed.text_embedder.linear_1.", "vector_in.in_layer."),
    ("time_text_embed.text_embedder.linear_2.", "vector_in.out_layer."),
    ("time_text_embed.guidance_embedder.linear_1.", "guidance_in.in_layer."),
    ("time_text_embed.guidance_embedder.linear_2.", "guidance_in.out_layer."),
    ("proj_out.", "final_layer.linear."),
    ("norm_out.linear.", "final_layer.adaLN_modulation.1."),
)
_BFL_DOUBLE = (
    ("norm1.linear.", "img_mod.lin."),
    ("norm1_context.linear.", "txt_mod.lin."),
    ("attn.to_q.", "img_attn.qkv."),
    ("attn.to_k.", "img_attn.qkv."),
    ("attn.to_v.", "img_attn.qkv."),
    ("attn.add_q_proj.", "txt_attn.qkv."),
    ("attn.add_k_proj.", "txt_attn.qkv."),
    ("attn.add_v_proj.", "txt_attn.qkv."),
    ("attn.norm_q.weight", "img_attn.norm.query_norm.scale"),
    ("attn.norm_k.weight", "img_attn.norm.key_norm.scale"),
    ("attn.norm_added_q.weight", "txt_attn.norm.query_norm.scale"),
    ("attn.norm_added_k.weight", "txt_attn.norm.key_norm.scale"),
    ("ff.net.0.proj.", "img_mlp.0."),
    ("ff.net.2.", "img_mlp.2."),
    ("ff_context.net.0.proj.", "txt_mlp.0."),
    ("ff_context.net.2.", "txt_mlp.2."),
    ("attn.to_out.0.", "img_attn.proj."),
    ("attn.to_add_out.", "txt_attn.proj."),
)
_BFL_SINGLE = (
    ("norm.linear.", "modulation.lin."),
    ("attn.to_q.", "linear1."),
    ("attn.to_k.", "linear1."),
    ("attn.to_v.", "linear1."),
    ("proj_mlp.", "linear1."),
    ("attn.norm_q.weight", "norm.query_norm.scale"),
    ("attn.norm_k.weight", "norm.key_norm.scale"),
    ("proj_out.", "linear2."),
)


def bfl_flux_rename(key: str) -> str:
    """diffusers ``FluxTransformer2DModel`` key -> BFL FLUX key (the inverse of
    ``convert_flux_transformer_checkpoint_to_diffusers``)."""
    if key.startswith("single_transformer_blocks."):
        return _by_prefix(
            key, (), r"single_transformer_blocks\.(\d+)\.", "single_blocks", _BFL_SINGLE
        )
    return _by_prefix(
        key, _BFL_PREFIXES, r"transformer_blocks\.(\d+)\.", "double_blocks", _BFL_DOUBLE
    )


def _by_prefix(
    key: str,
    fixed: Iterable[tuple[str, str]],
    block_pattern: str,
    block_name: str,
    inner: Iterable[tuple[str, str]],
) -> str:
    for diffusers, original in fixed:
        if key.startswith(diffusers):
            return original + key[len(diffusers) :]
    m = re.match(block_pattern, key)
    if m is not None:
        rest = key[m.end() :]
        for diffusers, original in inner:
            if rest.startswith(diffusers):
                return f"{block_name}.{m[1]}.{original}{rest[len(diffusers) :]}"
    raise ValueError(f"no original name for {key}")
