"""sd-mecha's seeded methods: DARE dropout (overlapping drop sets too), TIES after DELLA dropout.

Term for term sd-mecha 1.1.8's ``merge_methods/ties.py``, random draws included: each key starts
a fresh generator from the seed (numpy's ``default_rng`` for ``dropout``, a torch ``Generator``
for ``ties_sum_with_dropout``) and draws in sd-mecha's order, so one seed gives sd-mecha's
numbers key for key.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from compiler.merge.arguments import Arguments, number_arg, tensors_arg
from compiler.merge.consensus import ties_sum_extended


def dropout(args: Arguments) -> Tensor:
    """DARE-style dropout of each delta. An odd integer ``overlap`` draws each delta's mask
    apart; any other draws one subset of the deltas per position from
    :func:`overlapping_sets_pmf`. No seed draws differently on each run, as in sd-mecha."""
    deltas = tensors_arg(args, "deltas")
    probability, rescale = number_arg(args, "probability"), number_arg(args, "rescale")
    overlap = number_arg(args, "overlap")
    rng = np.random.default_rng(args["seed"])  # type: ignore[arg-type]
    shape = deltas[0].shape
    if overlap % 2 == 1:
        masks = tuple(
            torch.from_numpy(rng.binomial(n=1, p=1 - probability, size=shape)).to(torch.bool)
            for _ in deltas
        )
    else:
        pmf = overlapping_sets_pmf(len(deltas), probability, overlap, args["overlap_emphasis"])
        choices = np.arange(2 ** len(deltas))
        subsets = torch.from_numpy(np.asarray(rng.choice(choices, size=shape, p=pmf)))
        masks = tuple(subsets & 2**i != 0 for i in range(len(deltas)))
    final_delta = torch.zeros_like(deltas[0])
    for mask, delta in zip(masks, deltas, strict=True):
        final_delta[mask] += delta[mask]
    rescalar = 1.0
    if probability != 1.0:
        rescalar = (1.0 - probability) ** rescale
        rescalar = rescalar if math.isfinite(rescalar) else 1
    counts: Tensor = sum(masks[1:], masks[0].long())
    return final_delta / counts.clamp(1) / rescalar


def overlapping_sets_pmf(n: int, p: float, overlap: float, emphasis: object) -> np.ndarray:
    """The probability of keeping each subset of ``n`` deltas (bit ``i``: delta ``i``), subset 0
    (keep none) having ``p``.

    sd-mecha 1.1.8 passes numpy arrays to ``torch.lerp`` here, which raises, so every
    ``overlap`` but an odd integer fails there; this is its formula with the arrays as float64
    tensors. Weights that come out negative are refused as numpy refuses them."""
    assert isinstance(emphasis, int | float)
    if np.isclose(overlap, round(overlap)):
        if round(overlap) % 2 == 0:
            pmf = np.array([1 / n * float(bin(i).count("1") == 1) for i in range(1, 2**n)])
        else:
            pmf = np.array([0 for _ in range(1, 2**n - 1)] + [1])
    else:
        if math.floor(overlap) % 2 == 1:
            overlap = -overlap
        tan_overlap = np.tan(np.pi * (overlap - 0.5))
        pmf = np.array([tan_overlap * (bin(i).count("1") - n / 2) for i in range(1, 2**n)])
        pmf = np.exp(pmf) / np.sum(np.exp(pmf))
    binomial = _binomial_subset_pmf(n, p)
    sets = torch.from_numpy(pmf.astype(np.float64))
    mixed = torch.lerp(sets, torch.lerp(sets, binomial, 1 - abs(2 * overlap - 1)), emphasis)
    result = np.concatenate([[p], mixed.numpy() * (1 - p)])
    if (result < 0).any():
        raise ValueError(
            f"dropout: overlap={overlap} with overlap_emphasis={emphasis} gives negative "
            "subset probabilities (sd-mecha's formula; numpy refuses them)"
        )
    return result


def _binomial_subset_pmf(n: int, p: float) -> Tensor:
    """``binom.pmf(k, n, p)`` shared equally among the subsets of size ``k``, normalised."""
    by_size = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(1, n + 1)]
    weights = np.zeros(2**n - 1)
    for i in range(1, 2**n):
        size = bin(i).count("1")
        weights[i - 1] = by_size[size - 1] / math.comb(n, size)
    weights /= weights.sum()
    return torch.from_numpy(weights)


def ties_sum_with_dropout(args: Arguments) -> Tensor:
    """TIES (``ties_sum_extended``) over deltas thinned by DELLA dropout. Without a seed the
    generator keeps torch's fixed default seed, as in sd-mecha, so the result is the same on
    every run."""
    deltas = tensors_arg(args, "deltas")
    probability = args["probability"]
    assert isinstance(probability, Tensor)
    if math.isclose(probability, 1.0):
        return torch.zeros_like(deltas[0])  # sd-mecha returns the number 0
    generator = torch.Generator(deltas[0].device)
    seed = args["seed"]
    if isinstance(seed, int) and seed >= 0:
        generator.manual_seed(seed)
    della_eps = number_arg(args, "della_eps")
    kept = tuple(delta * _della_mask(delta, probability, della_eps, generator) for delta in deltas)
    result = ties_sum_extended({**args, "models": kept})
    rescalar = 1.0 - probability if args["rescale"] else 1.0
    return result / rescalar


def _della_mask(
    delta: Tensor, probability: Tensor, della_eps: float, generator: torch.Generator
) -> Tensor:
    """Keep each entry with probability ``1 - probability``, shifted by ``della_eps`` times its
    centred magnitude rank (DELLA: larger entries are kept more often)."""
    shift: Tensor | float = 0.0
    if not math.isclose(della_eps, 0.0):
        ranks = _ordinal_ranks(delta.abs())
        count = delta.numel()
        shift = ((ranks / count - (count + 1) / (count * 2)) * della_eps).nan_to_num(
            nan=0, posinf=0, neginf=0
        )
    p_min = torch.ones_like(delta) - probability
    return torch.bernoulli((p_min + shift).clamp(min=0, max=1), generator=generator)


def _ordinal_ranks(values: Tensor) -> Tensor:
    """``scipy.stats.rankdata(values, method="ordinal")``: 1 … n by a stable sort, ties by
    position."""
    flat = values.flatten()
    order = torch.argsort(flat, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, flat.numel() + 1, device=flat.device)
    return ranks.reshape(values.shape)


DROPOUT_METHODS = {fn.__name__: fn for fn in (dropout, ties_sum_with_dropout)}
