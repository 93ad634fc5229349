"""The delta a kohya LoRA adds to one key of its base, as sd-mecha composes it (torch).

The plan has mapped the LoRA onto its base (:func:`compiler.merge.lora.attach_loras`); here a
key's modules are read and composed: ``up @ down`` (a Tucker core ``lora_mid`` rebuilt between
them), times ``alpha / rank`` when the module has an alpha, reshaped to the base's shape, the
parts of a stacked key stacked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from compiler.merge.lora import LoraMap, Module


def lora_delta(lora: LoraMap, key: str, read: Callable[[str], Tensor]) -> Tensor | None:
    """The delta ``lora`` adds to ``key``, reading only that key's modules; ``None`` when the
    LoRA does not train it."""
    target = lora.targets.get(key)
    if target is None:
        return None
    shape = target.shape
    if target.transpose:
        part_shape = list(reversed(shape))
    else:
        part_shape = [shape[0] // len(target.modules), *shape[1:]]
    parts = [_module_delta(module, part_shape, read) for module in target.modules]
    delta = torch.vstack(parts) if len(parts) > 1 else parts[0]
    return delta.T if target.transpose else delta


def _module_delta(module: Module, shape: Sequence[int], read: Callable[[str], Tensor]) -> Tensor:
    """sd-mecha's ``LoraAlgorithm.compose`` term for term."""
    down = read(module.down)
    scale: Tensor | float = 1
    if module.alpha is not None:
        scale = read(module.alpha) / down.size(0)
    up = read(module.up)
    if module.mid is not None:
        wa = up.view(up.size(0), -1).transpose(0, 1)
        wb = down.view(down.size(0), -1)
        delta = torch.einsum("i j ..., i p, j r -> p r ...", read(module.mid), wa, wb)
    else:
        delta = up.view(up.size(0), -1) @ down.view(down.size(0), -1)
    delta = delta * scale
    return delta.reshape(shape)
