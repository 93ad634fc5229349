"""MIR-id parse throughput against a compiled ``re.fullmatch`` baseline (target ≥ 0.5 ×)."""

from __future__ import annotations

import random
import re

from compiler.lang.mir import parse_mir
from tests.bench.timing import best_time

_NAME = r"[a-z0-9]+(?:-[a-z0-9]+)*"
BASELINE = re.compile(
    rf"(?:mir:)?(dev|model|ops|operations|info)\.({_NAME})\.({_NAME})(?::({_NAME}))?(?:@({_NAME}))?"
)


def corpus(count: int = 20_000) -> list[str]:
    rng = random.Random(0)
    archs = ["dit", "unet", "lora", "vae", "art", "vit", "scheduler"]
    words = ["flux1-dev", "stable-diffusion-xl", "hyper", "clip-l", "t5-xxl", "sd3-5-large"]
    ids = []
    for i in range(count):
        text = f"{rng.choice(['mir:', ''])}info.{rng.choice(archs)}.{rng.choice(words)}-{i}"
        if rng.random() < 0.5:
            text += f":{rng.choice(words)}"
        ids.append(text)
    return ids


def run() -> list[str]:
    ids = corpus()
    regex = best_time(lambda: [BASELINE.fullmatch(t).groups() for t in ids])  # type: ignore[union-attr]
    ours = best_time(lambda: [parse_mir(t) for t in ids])
    return [
        f"parse_mir: {len(ids) / ours:,.0f} ids/s; re.fullmatch: {len(ids) / regex:,.0f} ids/s",
        f"ratio parse_mir / regex throughput = {regex / ours:.2f} (target >= 0.5)",
    ]
