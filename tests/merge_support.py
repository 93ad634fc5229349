"""Tiny safetensors models for the merge tests, and sd-mecha's own merge of the same recipe."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from compiler.merge.blocks import Family

SHAPES = {"blk.0.weight": (6, 4), "blk.0.bias": (6,), "blk.1.weight": (3, 2, 2), "norm.scale": ()}
SD_MECHA_CONFIG = "mirctest-tiny"
# the same keys in two components, and the registry family that says so to mirc
PARTS_CONFIG = "mirctest-parts"
PARTS = {"diffuser": ("blk.",), "vae": ("norm.",)}


def write_models(
    folder: Path,
    names: str = "abc",
    seed: int = 0,
    shapes: Mapping[str, tuple[int, ...]] = SHAPES,
) -> dict[str, dict[str, torch.Tensor]]:
    """Random float16 models named ``a``, ``b``, ``c`` … with the keys of ``shapes``
    (default :data:`SHAPES`), written and returned by name."""
    generator = torch.Generator().manual_seed(seed)
    models = {}
    for name in names:
        models[name] = {
            key: torch.randn(shape, generator=generator).to(torch.float16)
            for key, shape in shapes.items()
        }
        safetensors.torch.save_file(models[name], str(folder / f"{name}.safetensors"))
    return models


def parts_family() -> Family:
    """What the registry would say of the tiny models' layout: its components."""
    return Family("mir:info.test.tiny", {}, PARTS)


def _register_configs() -> None:
    from sd_mecha.extensions import model_configs

    keys = {k: {"shape": list(s), "dtype": "float16"} for k, s in SHAPES.items()}
    parts = {
        name: {k: v for k, v in keys.items() if k.startswith(prefixes)}
        for name, prefixes in PARTS.items()
    }
    for config in (
        model_configs.ModelConfigImpl(SD_MECHA_CONFIG, {"main": keys}),
        model_configs.ModelConfigImpl(PARTS_CONFIG, parts),
    ):
        with contextlib.suppress(ValueError):
            model_configs.register(config)


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
    recipe_text: str, folder: Path, space: str = "weight", config: str = SD_MECHA_CONFIG
) -> dict[str, torch.Tensor]:
    """sd-mecha 1.1.8's merge of a recipe (models named relative to ``folder``), in float32.
    Models and literals that name no model config get ``config``."""
    import sd_mecha

    _register_configs()

    def absolute(match: re.Match[str]) -> str:
        path = folder / f"{match.group(1)}.safetensors"
        return f'model "{path}" model_config="{config}" merge_space="weight"'

    from compiler.lang.mecha import format_recipe, parse_recipe

    canonical = format_recipe(parse_recipe(recipe_text))
    text = re.sub(r'model "([a-z])"', absolute, canonical)
    literal = r"^(literal &\d+)(?![^\n]*model_config=)"
    text = re.sub(literal, rf'\1 model_config="{config}"', text, flags=re.MULTILINE)
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
    """Fail if any tensor is read by either engine (the static checks must refuse before
    that). The torch engine imports ``read_tensor`` by name, so both modules' names are
    replaced."""
    import pytest

    from compiler.merge import evaluate, keyed, stream

    calls: list[str] = []

    def refuse(fd: int, header: Any, key: str) -> torch.Tensor:
        calls.append(key)
        raise AssertionError(f"tensor {key} read")

    def refuse_chunk(fd: int, buffer: Any, offset: int, what: str) -> None:
        calls.append(what)
        raise AssertionError(f"{what} read")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "read_tensor", refuse)
        patch.setattr(keyed, "read_tensor", refuse)
        patch.setattr(stream, "read_at", refuse_chunk)
        yield calls
