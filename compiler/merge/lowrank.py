"""sd-mecha's low-rank methods: ``truncate_rank`` and the randomised SVD it uses.

``svd_lowrank`` and ``get_approximate_basis`` are sd-mecha 1.1.8's copies of
``torch._lowrank`` (whose licence is PyTorch's), kept step for step so that a seeded
approximate basis draws the same random numbers as sd-mecha's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from compiler.merge.arguments import Arguments


def _approximate_basis(a: Tensor, rank: int, iters: int, seed: int | None) -> Tensor:
    generator = None
    if seed is not None:
        generator = torch.Generator(a.device)
        generator.manual_seed(seed)
    r = torch.randn(a.shape[-1], rank, dtype=a.dtype, device=a.device, generator=generator)
    q: Tensor = torch.linalg.householder_product(*torch.geqrf(a @ r))
    for _ in range(iters):
        q = torch.linalg.householder_product(*torch.geqrf(a.mH @ q))
        q = torch.linalg.householder_product(*torch.geqrf(a @ q))
    return q


def svd_lowrank(
    a: Tensor, rank: int, iters: int, seed: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """A rank-``rank`` SVD of ``a`` from a random basis refined by ``iters`` power iterations."""
    m, n = a.shape[-2:]
    if m < n:
        a = a.mH
    q = _approximate_basis(a, rank, iters, seed)
    u, s, vh = torch.linalg.svd(q.mH @ a, full_matrices=False)
    u = q @ u
    if m < n:
        u, vh = vh.mH, u.mH
    return u, s, vh


def truncate_rank(args: Arguments) -> Tensor:
    """The delta's best rank-``rank`` approximation, over its first dimension."""
    a, rank = args["a"], args["rank"]
    approximate, iters, seed = (
        args["use_approximate_basis"],
        args["approximate_basis_iters"],
        args["approximate_basis_seed"],
    )
    assert isinstance(a, Tensor) and isinstance(rank, int | float) and isinstance(iters, int)
    assert seed is None or isinstance(seed, int)
    if a.dim() < 2:
        return a
    a_2d = a.flatten(start_dim=1)
    max_rank = min(a_2d.shape)
    target_rank = min(max(round(rank), 0), max_rank)
    if target_rank == max_rank:
        return a
    if target_rank == 0:
        return torch.zeros_like(a)
    if approximate:
        u, s, vh = svd_lowrank(a_2d, target_rank, iters, seed)
    else:
        u, s, vh = torch.linalg.svd(a_2d, full_matrices=False)
    low_rank = u[..., :target_rank] * s[..., :target_rank].unsqueeze(-2)
    return (low_rank @ vh[..., :target_rank, :]).reshape(a.shape)
