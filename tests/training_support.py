"""Shared pieces of the training-script tests: a small registry with a trainable series, the
scripts rendered through the real pipeline, a tiny Stable Diffusion pipeline built offline, and
captioned images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compiler.lang.mir import parse_mir
from compiler.plan import plan_variant
from compiler.plan.trainer import plan_training_files, plan_training_runtime
from compiler.registry import check_registry
from compiler.render import render

SERIES = ("mir:info.unet.tiny-sd", "mir:info.unet.tiny-sdxl")
TINY_SD = """\
spec_version: 1
kind: series
id: mir:info.unet.tiny-sd
name: Tiny SD
variants:
  base:
    repo: org/tiny-sd
    backends:
      - package: diffusers
        class: StableDiffusionPipeline
    objective: epsilon
    training:
      descriptor: 1xb2-amp-coslr-1e
      methods: [lora, full]
      resolution: 32
      learning_rate: 0.01
      warmup_steps: 1
      noise_offset: 0.05
      caption_dropout: 0.25
      lora:
        rank: 4
        alpha: 8
        target_modules: [to_q, to_k, to_v, to_out.0]
      layers:
        - match: "up_blocks.*"
          lr_scale: 0.5
        - block: down_blocks_0_attentions_0
          lr_scale: 2.0
        - match: "*.attn2.to_k.*"
          freeze: true
  vpred:
    objective: v-prediction
    training:
      resolution: 32
      batch_size: 2
      learning_rate: 0.01
  flow:
    objective: flow-matching
    training:
      resolution: 32
      batch_size: 2
      learning_rate: 0.01
      lr_schedule: step
"""
TINY_SDXL = """\
spec_version: 1
kind: series
id: mir:info.unet.tiny-sdxl
variants:
  base:
    repo: org/tiny-sdxl
    backends:
      - package: diffusers
        class: StableDiffusionXLPipeline
    training:
      resolution: 32
      batch_size: 2
  refiner:
    backends:
      - package: diffusers
        class: StableDiffusionXLImg2ImgPipeline
    training:
      resolution: 32
"""
TARGET = """\
spec_version: 1
kind: target
id: {id}
name: {name}
device: {device}
memory_gib: {memory}
dtypes: [fp32, fp16, bf16]
attention: [sdpa]
devices_per_node: {devices}
nodes: {nodes}
"""
FILES = {
    "models/unet/tiny-sd.yaml": TINY_SD,
    "models/unet/tiny-sdxl.yaml": TINY_SDXL,
    "targets/cpu.yaml": TARGET.format(
        id="cpu", name="CPU", device="cpu", memory=16, devices=1, nodes=1
    ),
    "targets/cpu-2.yaml": TARGET.format(
        id="cpu-2", name="Two CPU processes", device="cpu", memory=16, devices=2, nodes=1
    ),
    "targets/h100-cluster.yaml": TARGET.format(
        id="h100-cluster", name="H100 cluster", device="cuda", memory=80, devices=8, nodes=4
    ),
}


def make_registry(root: Path, replace: dict[str, str] | None = None) -> Path:
    """The test registry in ``root/spec``; ``replace`` swaps the text of some of its files."""
    spec = root / "spec"
    for rel, text in {**FILES, **(replace or {})}.items():
        path = spec / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return spec


def rendered_training_files(root: Path) -> dict[str, str]:
    """check_registry → plan_variant → plan_training_files → render: generated path → text."""
    result = check_registry(make_registry(root))
    assert result.ok and result.linked is not None, result.diagnostics
    linked = result.linked
    rendered = {}
    for name in SERIES:
        series = linked.series[parse_mir(name)]
        plans = {v.id: plan_variant(linked, v) for v in series.variants.values()}
        for planned in plan_training_files(linked, series, plans):
            rendered[planned.path] = render(planned.template, planned.context)
    runtime = plan_training_runtime()
    rendered[runtime.path] = render(runtime.template, runtime.context)
    return rendered


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A character-level CLIP BPE vocabulary: no merges, every letter a token."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[f"{letter}</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"


def tiny_text_encoder_config(vocab_size: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        projection_dim=8,
    )


def tiny_unet_and_vae(**unet_options: Any) -> tuple[Any, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=2,
        norm_num_groups=4,
        **unet_options,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )
    return unet, vae


def build_tiny_pipeline(folder: Path) -> Path:
    """A Stable Diffusion pipeline of a few thousand parameters, saved as a diffusers folder."""
    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel, CLIPTokenizer

    vocab, merges = write_tokenizer_files(folder / "tokenizer-source")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=16, pad_token="!")
    torch.manual_seed(0)
    unet, vae = tiny_unet_and_vae(cross_attention_dim=16)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(tiny_text_encoder_config(len(tokenizer))),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDPMScheduler(num_train_timesteps=100, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target = folder / "tiny-sd"
    pipe.save_pretrained(target)
    return target


def build_tiny_sdxl_pipeline(folder: Path) -> Path:
    """The SDXL layout in miniature: two text encoders (the second pooled and projected) whose
    states are concatenated, and the size-and-crop time ids."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    vocab, merges = write_tokenizer_files(folder / "tokenizer-source")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=16, pad_token="!")
    torch.manual_seed(0)
    config = tiny_text_encoder_config(len(tokenizer))
    unet, vae = tiny_unet_and_vae(
        cross_attention_dim=32,
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=8 + 6 * 4,  # pooled text + six time ids
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(num_train_timesteps=100),
    )
    target = folder / "tiny-sdxl"
    pipe.save_pretrained(target)
    return target


def write_images(folder: Path) -> Path:
    """Six small captioned images of three aspect ratios."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(32, 32), (48, 24), (24, 48), (40, 40), (50, 25), (20, 44)]
    words = ["red", "green", "blue", "dark", "light", "grey"]
    for number, (size, word) in enumerate(zip(sizes, words, strict=True)):
        shade = (number * 40 % 256, 255 - number * 30, number * 70 % 256)
        Image.new("RGB", size, shade).save(folder / f"image{number}.png")
        (folder / f"image{number}.txt").write_text(f"a {word} square\n", encoding="utf-8")
    return folder
