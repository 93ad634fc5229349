"""LoRA layouts of each family: the keys kohya's sd-scripts and diffusers/peft write.

A LoRA's rank is the user's choice, so LoRA shapes carry ``None`` where the rank goes
(``lora_down.weight``: ``[rank, in]``, ``lora_up.weight``: ``[out, rank]``; 1x1 convolutions keep
their trailing ``1, 1``). Module names come from the base model's layout in the naming the tool
trains on: kohya names the module path with ``_`` for ``.`` under ``lora_unet_``/``lora_te_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from tools.fingerprinting.configs import Layout

LoraShape = tuple[int | None, ...]
LoraLayout = dict[str, LoraShape]
Select = Callable[[str], bool]


def _adaptable(shape: tuple[int, ...]) -> bool:
    """Linear weights and 1x1 convolutions: the layers kohya and peft put a LoRA on."""
    return len(shape) == 2 or (len(shape) == 4 and shape[2:] == (1, 1))


def kohya_lora(source: Layout, prefix: str, select: Select) -> LoraLayout:
    """kohya keys (down, up, alpha) for every adaptable weight of ``source`` that ``select``
    keeps, named under ``prefix`` (``lora_unet_``, ``lora_te1_`` …)."""
    result: LoraLayout = {}
    for key, shape in source.items():
        if not key.endswith(".weight") or not _adaptable(shape) or not select(key):
            continue
        stem = prefix + key.removesuffix(".weight").replace(".", "_")
        result[f"{stem}.lora_down.weight"] = (None, shape[1], *shape[2:])
        result[f"{stem}.lora_up.weight"] = (shape[0], None, *shape[2:])
        result[f"{stem}.alpha"] = ()
    return result


def peft_lora(source: Layout, prefix: str, targets: Iterable[str]) -> LoraLayout:
    """diffusers ``save_lora_weights`` keys (peft ``lora_A``/``lora_B``) for the modules of
    ``source`` whose names end with one of ``targets``, under ``prefix`` (``unet.`` …)."""
    suffixes = tuple(targets)
    result: LoraLayout = {}
    for key, shape in source.items():
        module = key.removesuffix(".weight")
        if not key.endswith(".weight") or not _adaptable(shape):
            continue
        if not any(module == t or module.endswith("." + t) for t in suffixes):
            continue
        result[f"{prefix}{module}.lora_A.weight"] = (None, shape[1], *shape[2:])
        result[f"{prefix}{module}.lora_B.weight"] = (shape[0], None, *shape[2:])
    return result


def with_rank(layout: LoraLayout, rank: int) -> Layout:
    """``layout`` with a concrete rank: the file a user would have."""
    return {
        k: tuple(rank if size is None else size for size in shape) for k, shape in layout.items()
    }


def unet_transformer_modules(key: str) -> bool:
    """sd-scripts' default UNet LoRA targets: the layers inside the Transformer2D blocks."""
    return "transformer_blocks." in key or key.endswith(("proj_in.weight", "proj_out.weight"))


def clip_encoder_modules(key: str) -> bool:
    """sd-scripts' text-encoder LoRA targets: attention and MLP projections of every layer."""
    return ".encoder.layers." in key


def flux_block_modules(key: str) -> bool:
    """sd-scripts' FLUX LoRA targets: every linear layer of the double and single blocks."""
    return key.startswith(("double_blocks.", "single_blocks."))


def mmdit_block_modules(key: str) -> bool:
    """sd-scripts' SD3 LoRA targets: every linear layer of the joint blocks."""
    return key.startswith("joint_blocks.")


def diffusers_flux_conversion(kohya: LoraLayout) -> Layout:
    """Run diffusers' ``_convert_kohya_flux_lora_to_diffusers`` on a rank-1 file of ``kohya``'s
    layout (real zero tensors: the converter reads values) and return the peft layout it makes."""
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers

    state = {k: torch.zeros(shape) for k, shape in with_rank(kohya, 1).items()}
    converted = _convert_kohya_flux_lora_to_diffusers(state)
    return {key: tuple(tensor.shape) for key, tensor in converted.items()}
