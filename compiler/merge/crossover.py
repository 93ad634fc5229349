"""sd-mecha's ``crossover``: low frequencies of one tensor, high frequencies of the other.

Term for term sd-mecha 1.1.8's ``merge_methods/crossover.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from compiler.merge.arguments import Arguments


def crossover(args: Arguments) -> Tensor:
    a, b = args["a"], args["b"]
    alpha, tilt = args["alpha"], args["tilt"]
    assert isinstance(a, Tensor) and isinstance(b, Tensor)
    assert isinstance(alpha, int | float) and isinstance(tilt, int | float)
    if alpha == 0:
        return a
    if alpha == 1:
        return b
    if tilt == 1 or len(a.shape) == 0 or torch.allclose(a, b):
        return torch.lerp(a, b, alpha)
    a_dft = torch.fft.rfftn(a, s=a.shape)
    b_dft = torch.fft.rfftn(b, s=a.shape)
    dft_filter = create_filter(a_dft.shape, float(alpha), float(tilt))
    merged: Tensor = torch.fft.irfftn((1 - dft_filter) * a_dft + dft_filter * b_dft, s=a.shape)
    return merged


def _gradients(shape: tuple[int, ...]) -> list[Tensor]:
    gradients = []
    for i, s in enumerate(reversed(shape)):
        if i == 0 or s == 1:
            gradients.append(torch.linspace(0, 1, s))
        else:  # negative frequencies are in the second half of the dimension
            halves = (
                torch.linspace(0, (s - 1) // 2, s - s // 2),
                torch.linspace(s // 2, 1, s // 2),
            )
            gradients.append(torch.cat(halves) / (s // 2))
    return list(reversed(gradients))


def create_filter(shape: tuple[int, ...], alpha: float, tilt: float) -> Tensor:
    if not 0 <= alpha <= 1:
        raise ValueError("crossover's alpha must be between 0 and 1")
    tilt -= math.floor(tilt // 4 * 4)
    inverted = tilt > 2
    if inverted:
        alpha = 1 - alpha
    gradients = _gradients(tuple(shape))
    if len(shape) > 1:
        grids = torch.meshgrid(*(g**2 for g in gradients), indexing="ij")
        mesh = (torch.stack(grids).sum(dim=0) / len(shape)).sqrt()
    else:
        mesh = gradients[0]
    if tilt < 1e-10 or abs(tilt - 4) < 1e-10:
        dft_filter = (mesh > 1 - alpha).float()
    elif abs(tilt - 2) < 1e-10:
        dft_filter = (mesh < 1 - alpha).float()
    else:
        cot = 1 / math.tan(math.pi * tilt / 2)
        if tilt <= 1 or 2 < tilt <= 3:
            dft_filter = mesh * cot + alpha * cot + alpha - cot
        else:
            dft_filter = mesh * cot - alpha * cot + alpha
        dft_filter = dft_filter.clip(0, 1)
    return 1 - dft_filter if inverted else dft_filter
