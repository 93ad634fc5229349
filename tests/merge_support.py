"""Tiny safetensors models for the merge tests, and sd-mecha's own merge of the same recipe."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

SHAPES = {"blk.0.weight": (6, 4), "blk.0.bias": (6,), "blk.1.weight": (3, 2, 2), "norm.scale": ()}
SD_MECHA_CONFIG = "mirctest-tiny"


def write_models(folder: Path, names: str = "abc", seed: int = 0) -> None:
    """Random float16 models named ``a``, ``b``, ``c`` … with the keys of :data:`SHAPES`."""
    generator = torch.Generator().manual_seed(seed)
    for name in names:
        tensors = {
            key: torch.randn(shape, generator=generator).to(torch.float16)
            for key, shape in SHAPES.items()
        }
        safetensors.torch.save_file(tensors, str(folder / f"{name}.safetensors"))


def _register_config() -> None:
    from sd_mecha.extensions import model_configs

    with contextlib.suppress(ValueError):
        keys = {k: {"shape": list(s), "dtype": "float16"} for k, s in SHAPES.items()}
        model_configs.register(model_configs.ModelConfigImpl(SD_MECHA_CONFIG, {"main": keys}))


class _Quiet:
    def __init__(self, **_: Any) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, *_: object) -> None:
        pass

    def set_postfix(self, *_: object, **__: object) -> None:
        pass


def sd_mecha_merge(
    recipe_text: str, folder: Path, space: str = "weight"
) -> dict[str, torch.Tensor]:
    """sd-mecha 1.1.8's merge of a recipe (models named relative to ``folder``), in float32."""
    import sd_mecha

    _register_config()

    def absolute(match: re.Match[str]) -> str:
        path = folder / f"{match.group(1)}.safetensors"
        return f'model "{path}" model_config="{SD_MECHA_CONFIG}" merge_space="weight"'

    from compiler.lang.mecha import format_recipe, parse_recipe

    canonical = format_recipe(parse_recipe(recipe_text))
    text = re.sub(r'model "([a-z])"', absolute, canonical)
    recipe = sd_mecha.deserialize(text.splitlines())
    merged = sd_mecha.merge(
        recipe,
        output_dtype=torch.float32,
        strict_merge_space=space,
        check_extra_keys=False,
        threads=0,
        tqdm=_Quiet,
    )
    assert isinstance(merged, dict)
    return {k: v for k, v in merged.items() if isinstance(v, torch.Tensor)}


@contextlib.contextmanager
def no_reads() -> Iterator[list[str]]:
    """Fail if any tensor is read by either engine (the static checks must refuse before)."""
    from compiler.merge import evaluate, stream

    original_tensor, original_chunk = evaluate.read_tensor, stream.read_at
    calls: list[str] = []

    def refuse(fd: int, header: Any, key: str) -> torch.Tensor:
        calls.append(key)
        raise AssertionError(f"tensor {key} read")

    def refuse_chunk(fd: int, buffer: Any, offset: int, what: str) -> None:
        calls.append(what)
        raise AssertionError(f"{what} read")

    evaluate.read_tensor = refuse  # type: ignore[assignment]
    stream.read_at = refuse_chunk
    try:
        yield calls
    finally:
        evaluate.read_tensor = original_tensor
        stream.read_at = original_chunk
