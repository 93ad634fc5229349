"""Tiny real models for the loader tests, built offline: a Stable Diffusion pipeline (UNet, VAE,
CLIP text encoder and a CLIP tokenizer from a vocabulary written here) saved in the diffusers
layout, and the same weights as one checkpoint in the original (LDM) layout that diffusers'
``from_single_file`` reads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

LAYERS_PER_BLOCK = 1


def tiny_tokenizer(folder: Path) -> CLIPTokenizer:
    """A byte-pair tokenizer over single letters: no merges, no download."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16
    )


def tiny_text_encoder(vocab_size: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=16,
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModel(config)


def tiny_pipeline(work: Path) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline of about 1.5M parameters, with a DDIM scheduler (the spec
    asks for Euler, so a loader that swaps schedulers is seen doing it)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=LAYERS_PER_BLOCK,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        sample_size=32,
    )
    tokenizer = tiny_tokenizer(work / "tokenizer-source")
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=tiny_text_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(clip_sample=False, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# diffusers' names for a resnet's layers → the original ones (the inverse of diffusers'
# update_unet_resnet_ldm_to_diffusers), and the same for the VAE's mid-block attention.
UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
UNET_BLOCK = re.compile(
    r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)"
)
UNET_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)")
VAE_BLOCK = re.compile(
    r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)"
)
VAE_MID = re.compile(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.*)")


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{UNET_RESNET.get(head, head)}.{tail}"


def _unet_key(key: str, keys: set[str]) -> str:
    top = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    if key in top:
        return str(top[key])
    per = LAYERS_PER_BLOCK + 1
    if match := UNET_BLOCK.fullmatch(key):
        side, block, part, layer, rest = match.groups()
        b, index = int(block), LAYERS_PER_BLOCK if part.endswith("samplers") else int(layer)
        rest = _resnet(rest) if part == "resnets" else rest
        if side == "down":
            where = {"resnets": "0", "attentions": "1", "downsamplers": "0.op"}[part]
            rest = rest.removeprefix("conv.") if part == "downsamplers" else rest
            return f"input_blocks.{1 + b * per + index}.{where}.{rest}"
        attentions = any(k.startswith(f"up_blocks.{b}.attentions.") for k in keys)
        where = {"resnets": "0", "attentions": "1", "upsamplers": "2" if attentions else "1"}[part]
        return f"output_blocks.{b * per + index}.{where}.{rest}"
    match = UNET_MID.fullmatch(key)
    assert match is not None, key
    part, layer, rest = match.groups()
    if part == "resnets":
        return f"middle_block.{2 * int(layer)}.{_resnet(rest)}"
    return f"middle_block.1.{rest}"


def _vae_key(key: str, blocks: int) -> str:
    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in top:
        return str(top[key])
    if match := VAE_BLOCK.fullmatch(key):
        side, direction, block, part, layer, rest = match.groups()
        b = int(block) if direction == "down" else blocks - 1 - int(block)
        rest = rest.replace("conv_shortcut", "nin_shortcut")
        if part == "resnets":
            return f"{side}.{direction}.{b}.block.{layer}.{rest}"
        return f"{side}.{direction}.{b}.{direction}sample.{rest}"
    match = VAE_MID.fullmatch(key)
    assert match is not None, key
    side, part, layer, rest = match.groups()
    if part == "resnets":
        return f"{side}.mid.block_{int(layer) + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}"
    name, _, parameter = rest.rpartition(".")
    return f"{side}.mid.attn_1.{VAE_ATTENTION[name]}.{parameter}"


def ldm_checkpoint(pipe: StableDiffusionPipeline) -> dict[str, torch.Tensor]:
    """The pipeline's weights in the original Stable Diffusion checkpoint layout."""
    unet = pipe.unet.state_dict()
    checkpoint = {f"model.diffusion_model.{_unet_key(k, set(unet))}": v for k, v in unet.items()}
    blocks = len(pipe.vae.config.down_block_types)
    for key, value in pipe.vae.state_dict().items():
        name = _vae_key(key, blocks)
        if ".mid.attn_1." in name and value.ndim == 2:
            value = value[:, :, None, None]  # the original attention layers are 1x1 convolutions
        checkpoint[f"first_stage_model.{name}"] = value
    for key, value in pipe.text_encoder.state_dict().items():
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        checkpoint[f"cond_stage_model.transformer.{name}"] = value
    return {k: v.contiguous() for k, v in checkpoint.items()}


def save_single_file(pipe: StableDiffusionPipeline, path: Path) -> dict[str, Any]:
    checkpoint = ldm_checkpoint(pipe)
    save_file(checkpoint, str(path))
    return checkpoint
