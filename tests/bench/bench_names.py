"""Name parsers against their floors: AIRs (fast path and grammar), MMPretrain names, naming.

Each figure is a ratio against a baseline measured in the same run: a compiled ``re.fullmatch``
for AIRs, ``str.split`` for MMPretrain names (what a grammar replaces), one ``re.sub`` pass for
the naming rules.
"""

from __future__ import annotations

import random
import re

from compiler.lang.air import _FAST, _parse_slow, parse_air
from compiler.lang.mmpretrain import parse_model_name
from compiler.naming import derive_series
from tests.bench.timing import best_time


def air_corpus(count: int = 10_000) -> list[str]:
    rng = random.Random(0)
    ecosystems = ["sdxl", "sd1", "flux1", "pony", "illustrious"]
    types = ["checkpoint", "lora", "vae", "embedding"]
    return [
        f"{rng.choice(['urn:air:', 'air:', ''])}{rng.choice(ecosystems)}:{rng.choice(types)}"
        f":civitai:{rng.randrange(10**6)}@{rng.randrange(10**7)}"
        for _ in range(count)
    ]


MODEL_NAMES = [
    "vit-base-p32_clip-openai-pre_3rdparty_in1k",
    "beit_beit-base-p16_8xb256-amp-coslr-300e_in1k",
    "resnet50_8xb32_in1k",
    "mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k",
    "vit-large-p16_in21k-pre_3rdparty_in1k-384px",
] * 400

REPOS = [
    "tencent-hunyuan/hunyuandiT-v1.2-diffusers",
    "black-forest-labs/FLUX.1-dev",
    "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "meta-llama/Llama-2-7b-hf",
    "stabilityai/stable-diffusion-xl-base-1.0",
] * 400


def run() -> list[str]:
    airs = air_corpus()
    regex = best_time(lambda: [_FAST.fullmatch(t) for t in airs])
    fast = best_time(lambda: [parse_air(t) for t in airs])
    slow = best_time(lambda: [_parse_slow(t, "<b>") for t in airs[:1000]], repeat=3) * 10
    split = best_time(lambda: [name.split("_") for name in MODEL_NAMES])
    grammar = best_time(lambda: [parse_model_name(n) for n in MODEL_NAMES], repeat=3)
    one_sub = best_time(lambda: [re.sub(r"[^a-z0-9]+", "-", r.lower()) for r in REPOS])
    naming = best_time(lambda: [derive_series(r) for r in REPOS], repeat=3)
    return [
        f"parse_air: {len(airs) / fast:,.0f} AIRs/s; ratio to re.fullmatch = {regex / fast:.2f}",
        f"AIR fast path is {slow / fast:.0f}x the grammar path on well-formed AIRs",
        f"parse_model_name: {len(MODEL_NAMES) / grammar:,.0f} names/s; "
        f"ratio to str.split = {split / grammar:.4f}",
        f"derive_series: {len(REPOS) / naming:,.0f} repos/s; ratio to one re.sub = "
        f"{one_sub / naming:.3f}",
    ]
