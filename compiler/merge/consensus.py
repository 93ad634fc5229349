"""sd-mecha's methods that combine many deltas: TIES, model stock, the geometric median.

Term for term sd-mecha 1.1.8's ``merge_methods/ties.py`` (TIES: arXiv 2306.01708; model stock
after mergekit; the median by Weiszfeld iterations after krishnap25/geom_median).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from compiler.merge.arguments import Arguments, number_arg, tensors_arg


def filter_top_k(a: Tensor, k: float) -> Tensor:
    count = max(int((1 - k) * a.numel()), 1)
    k_value, _ = a.flatten().abs().float().kthvalue(count)
    return a * (a.abs() >= k_value).float()


def ties_sum_deltas(models: Sequence[Tensor], k: float, vote_sgn: bool) -> tuple[Tensor, Tensor]:
    deltas = torch.stack([filter_top_k(m, k) for m in models], dim=0)
    signs = torch.sign(deltas)
    final_sign = torch.sign(torch.sum(deltas if vote_sgn else signs, dim=0))
    delta_filters = (signs == final_sign).float()
    return deltas * delta_filters, torch.sum(delta_filters, dim=0)


def ties_sum(args: Arguments) -> Tensor:
    models = tensors_arg(args, "models")
    if models[0].numel() == 0:
        return models[0]
    filtered, counts = ties_sum_deltas(models, number_arg(args, "k"), bool(args["vote_sgn"]))
    return torch.nan_to_num(filtered.sum(dim=0) / counts, nan=0, posinf=0, neginf=0)


def ties_sum_extended(args: Arguments) -> Tensor:
    models = tensors_arg(args, "models")
    if models[0].numel() == 0:
        return models[0]
    filtered, counts = ties_sum_deltas(models, number_arg(args, "k"), bool(args["vote_sgn"]))
    if args["apply_median"]:
        median = _median(tuple(filtered), *_median_options(args))
        return torch.nan_to_num(median, nan=0, posinf=0, neginf=0)
    if args["apply_stock"]:
        result = filtered.sum(dim=0) * 1.0 / counts
    else:
        t = model_stock_t(tuple(filtered), number_arg(args, "cos_eps"))
        result = filtered.sum(dim=0) * t / counts
    return torch.nan_to_num(result, nan=0, posinf=0, neginf=0)


def model_stock_t(deltas: Sequence[Tensor], cos_eps: float) -> Tensor:
    """mergekit's approximation: the mean cosine of neighbouring deltas, mapped to a ratio."""
    n = len(deltas)
    cos = torch.nn.CosineSimilarity(dim=-1, eps=cos_eps)
    cos_theta = torch.stack([cos(deltas[i], deltas[i + 1]) for i in range(n - 1)]).mean(dim=0)
    return (n * cos_theta / (1 + (n - 1) * cos_theta)).unsqueeze(-1)


def model_stock(args: Arguments) -> Tensor:
    deltas = tensors_arg(args, "deltas")
    w_avg = sum(deltas[1:], deltas[0]) / len(deltas)
    return torch.nan_to_num(model_stock_t(deltas, number_arg(args, "cos_eps")) * w_avg)


def _median_options(args: Arguments) -> tuple[float, int, float]:
    return (
        number_arg(args, "eps"),
        int(number_arg(args, "maxiter")),
        number_arg(args, "ftol"),
    )


def _weighted_average(points: Sequence[Tensor], weights: Tensor | None = None) -> Tensor:
    if weights is None:
        return sum(points[1:], points[0]) / len(points)
    total = sum((p * weights[i] for i, p in enumerate(points[1:], 1)), points[0] * weights[0])
    return total / weights.sum()


def _objective(median: Tensor, points: Sequence[Tensor], weights: Tensor) -> Tensor:
    return torch.mean(torch.stack([torch.dist(point, median) for point in points]) * weights)


def _median(models: Sequence[Tensor], eps: float, maxiter: int, ftol: float) -> Tensor:
    median = _weighted_average(models)
    weights = new_weights = torch.ones(len(models), dtype=models[0].dtype)
    objective = _objective(median, models, weights)
    for _ in range(max(0, maxiter)):
        previous = objective
        denominator = torch.stack([torch.dist(p, median) for p in models])
        new_weights = weights / torch.clamp(denominator, min=eps)
        median = _weighted_average(models, new_weights)
        objective = _objective(median, models, weights)
        if abs(previous - objective) <= ftol * objective:
            break
    return _weighted_average(models, new_weights)


def geometric_median(args: Arguments) -> Tensor:
    return _median(tensors_arg(args, "models"), *_median_options(args))


CONSENSUS_METHODS = {
    fn.__name__: fn for fn in (ties_sum, ties_sum_extended, model_stock, geometric_median)
}
