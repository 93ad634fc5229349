"""The math of sd-mecha's merge methods, one key at a time.

Each method takes the bound arguments of one key — tensors already in the merge dtype (float32),
scalars as sd-mecha passes them (a ``Tensor`` parameter gets a 0-d tensor, a ``float`` one a
float) — and returns the merged tensor. The formulas are sd-mecha 1.1.8's
(``sd_mecha/extensions/builtin/merge_methods``), kept term for term so results agree to
rounding; a conformance test merges the same inputs with sd-mecha itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from compiler.merge.arguments import Arguments, number_arg, tensor_arg
from compiler.merge.consensus import CONSENSUS_METHODS
from compiler.merge.crossover import crossover
from compiler.merge.dropout import DROPOUT_METHODS
from compiler.merge.lowrank import truncate_rank
from compiler.merge.rotate import rotate

# ``None``: the method gives no value for this key (sd-mecha raises ``StateDictKeyError``)
MethodFn = Callable[[Arguments], Tensor | None]


def _is(alpha: Tensor, value: float) -> bool:
    return alpha.numel() == 1 and math.isclose(alpha.item(), value)


def weighted_sum(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    if _is(alpha, 0.0):
        return a
    if _is(alpha, 1.0):
        return b
    return torch.lerp(a, b, alpha)


def n_average(args: Arguments) -> Tensor:
    models = args["models"]
    assert isinstance(models, tuple) and models
    result: Tensor = models[0]
    for i, model in enumerate(models[1:], start=2):
        result = torch.lerp(result, model, 1 / i)
    return result


def slerp(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    a_normalized = a / a.norm()
    b_normalized = b / b.norm()
    ab_dot = (a_normalized * b_normalized).sum().clamp(-1, 1)
    omega = torch.arccos(ab_dot)
    a_contrib = a_normalized * torch.sin((1 - alpha) * omega)
    b_contrib = b_normalized * torch.sin(alpha * omega)
    result: Tensor = (a_contrib + b_contrib) / torch.sin(omega)
    result *= torch.lerp(a.norm(), b.norm(), alpha)
    if result.isnan().any():
        return torch.lerp(a, b, alpha)
    return result


def add_difference(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    if _is(alpha, 0.0):
        return a
    return a.addcmul(b, alpha)


def scale(args: Arguments) -> Tensor:
    a, alpha = tensor_arg(args, "a"), tensor_arg(args, "alpha")
    if _is(alpha, 0.0):
        return torch.zeros_like(a)
    if _is(alpha, 1.0):
        return a
    return a * alpha


def subtract(args: Arguments) -> Tensor:
    return tensor_arg(args, "a") - tensor_arg(args, "b")


def perpendicular_component(args: Arguments) -> Tensor:
    a, b = tensor_arg(args, "a"), tensor_arg(args, "b")
    norm_a = torch.linalg.norm(a)
    result: Tensor = b - a * (a / norm_a * (b / norm_a)).sum()
    if result.isnan().any():
        return torch.zeros_like(a)
    return result


def _abc(args: Arguments) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        tensor_arg(args, "a"),
        tensor_arg(args, "b"),
        tensor_arg(args, "c"),
        tensor_arg(args, "alpha"),
    )


def train_difference_mask(args: Arguments) -> Tensor:
    a, b, c, alpha = _abc(args)
    ratio = (b - a).abs() / ((b - a).abs() + (b - c).abs())
    return alpha * 1.8 * torch.nan_to_num(ratio, nan=0)


def add_opposite_mask(args: Arguments) -> Tensor:
    a, b, c, alpha = _abc(args)
    ratio = (a - b).abs() / ((a - b).abs() + (a + b - 2 * c).abs())
    return alpha * 2 * torch.nan_to_num(ratio, nan=0)


def add_strict_opposite_mask(args: Arguments) -> Tensor:
    a, b, c, alpha = _abc(args)
    threshold = torch.maximum(torch.abs(a - c), torch.abs(b - c))
    return alpha * torch.clamp(torch.nan_to_num((c - a) * (b - c) / threshold**2, nan=0), 0) * 2


def geometric_sum(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    a_complex = torch.complex(a, torch.zeros_like(a))
    b_complex = torch.complex(b, torch.zeros_like(b))
    return (a_complex ** (1 - alpha) * b_complex**alpha).real


def multiply_quotient(args: Arguments) -> Tensor:
    a, b, c, alpha = _abc(args)
    ac_log = torch.log(a.abs()) - torch.log(c.abs())
    bc_log = torch.log(b.abs()) - torch.log(c.abs())
    b_complex = torch.complex(b, torch.zeros_like(b))
    c_complex = torch.complex(c, torch.zeros_like(c))
    threshold = torch.maximum(torch.abs(ac_log), torch.abs(bc_log))
    alpha = alpha * torch.clamp(-torch.nan_to_num(ac_log * bc_log / threshold**2, nan=0), 0)
    result = a * (b_complex / c_complex) ** alpha
    result = torch.where(torch.isnan(result), a, result)
    return result.real


def _add_cosine(a: Tensor, b: Tensor, alpha: Tensor, similarity: Tensor) -> Tensor:
    k = 1 - torch.clamp(similarity - alpha, 0, 1)
    return torch.lerp(a, b, k)


def add_cosine_a(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    a_norm = torch.nn.functional.normalize(a, dim=0)
    b_norm = torch.nn.functional.normalize(b, dim=0)
    similarity = torch.nn.functional.cosine_similarity(a_norm, b_norm, dim=0)
    return _add_cosine(a, b, alpha, similarity)


def add_cosine_b(args: Arguments) -> Tensor:
    a, b, alpha = tensor_arg(args, "a"), tensor_arg(args, "b"), tensor_arg(args, "alpha")
    similarity = torch.nn.functional.cosine_similarity(a, b, dim=0)
    magnitude_similarity = torch.sum(a * b) / (torch.norm(a) * torch.norm(b))
    return _add_cosine(a, b, alpha, (similarity + magnitude_similarity) / 2.0)


def clamp(args: Arguments) -> Tensor:
    a, stiffness = tensor_arg(args, "a"), number_arg(args, "stiffness")
    bounds = args["bounds"]
    assert isinstance(bounds, tuple) and bounds
    maximums = functools.reduce(torch.maximum, bounds)
    minimums = functools.reduce(torch.minimum, bounds)
    if stiffness:
        stacked = torch.stack(bounds)
        average = stacked.mean(dim=0)
        smallest_positive, largest_negative = maximums, minimums
        for bound in stacked:
            above = (smallest_positive >= bound) & (bound >= average)
            below = (largest_negative <= bound) & (bound <= average)
            smallest_positive = torch.where(above, bound, smallest_positive)
            largest_negative = torch.where(below, bound, largest_negative)
        maximums = (1 - stiffness) * maximums + stiffness * smallest_positive
        minimums = (1 - stiffness) * minimums + stiffness * largest_negative
    return torch.minimum(torch.maximum(a, minimums), maximums)


CAST_DTYPES: Mapping[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "bool": torch.bool,
}


def cast(args: Arguments) -> Tensor:
    a, device, dtype = tensor_arg(args, "a"), args["device"], args["dtype"]
    if dtype is not None and dtype not in CAST_DTYPES:
        known = ", ".join(CAST_DTYPES)
        raise ValueError(f"cast: unknown dtype {dtype}; known: {known}")
    return a.to(
        device=str(device) if device is not None else None,
        dtype=CAST_DTYPES[str(dtype)] if dtype is not None else None,
    )


def _ratio_to_region(width: float, offset: float, n: int) -> tuple[int, int, bool]:
    if width < 0:
        offset += width
        width = -width
    width = min(width, 1)
    if offset < 0:
        offset = 1 + offset - int(offset)
    offset = math.fmod(offset, 1.0)
    if width + offset <= 1:
        return round(offset * n), round((width + offset) * n), False
    return round((width + offset - 1) * n), round(offset * n), True


def tensor_sum(args: Arguments) -> Tensor:
    a, b = tensor_arg(args, "a").clone(), tensor_arg(args, "b").clone()
    width, offset = number_arg(args, "width"), number_arg(args, "offset")
    if a.shape == ():
        return b if width > 0.5 else a
    start, end, inverted = _ratio_to_region(width, offset, a.size(0))
    if inverted:
        b[start:end] = a[start:end]
        return b
    a[start:end] = b[start:end]
    return a


def _kth_abs_value(a: Tensor, k: int) -> Tensor:
    if k <= 0:
        return torch.tensor(-1, device=a.device)
    return torch.kthvalue(torch.abs(a.float()), k)[0]


def top_k_tensor_sum(args: Arguments) -> Tensor:
    a, b = tensor_arg(args, "a"), tensor_arg(args, "b")
    a_flat = torch.flatten(a)
    a_dist = torch.msort(a_flat)
    redist_indices = torch.argsort(torch.argsort(torch.flatten(b), stable=True))
    start, end, inverted = _ratio_to_region(
        number_arg(args, "width"), number_arg(args, "offset"), a.numel()
    )
    start_top_k = _kth_abs_value(a_dist, start)
    end_top_k = _kth_abs_value(a_dist, end)
    mask = (start_top_k <= torch.abs(a_dist)) & (torch.abs(a_dist) <= end_top_k)
    if inverted:
        mask = ~mask
    mask_float = torch.gather(mask.float(), 0, redist_indices)
    a_redist = torch.gather(a_dist, 0, redist_indices)
    return ((1 - mask_float) * a_flat + mask_float * a_redist).reshape_as(a)


def omit_non_finite(args: Arguments) -> Tensor | None:
    """The tensor, or no value for the key (sd-mecha's key error) when any entry is not finite."""
    a = tensor_arg(args, "a")
    return a if bool(a.isfinite().all()) else None


def fallback(args: Arguments) -> Tensor | None:
    """``a`` where it has a value for the key, else ``default``."""
    a, default = args["a"], args["default"]
    assert a is None or isinstance(a, Tensor)
    assert default is None or isinstance(default, Tensor)
    return a if a is not None else default


def pick_component(args: Arguments) -> Tensor | None:
    """``a`` for the keys of one component of the model (``key_component``: the key's, from the
    registry's fingerprint), no value for the others."""
    return tensor_arg(args, "a") if args["key_component"] == args["component"] else None


def omit_component(args: Arguments) -> Tensor | None:
    """``a`` for the keys outside one component of the model, no value for that component's."""
    return None if args["key_component"] == args["component"] else tensor_arg(args, "a")


def stack(args: Arguments) -> Tensor:
    values = args["values"]
    assert isinstance(values, tuple)
    return torch.stack(values)


METHODS: Mapping[str, MethodFn] = (
    CONSENSUS_METHODS
    | DROPOUT_METHODS
    | {
        fn.__name__: fn
        for fn in (
            pick_component,
            omit_component,
            stack,
            cast,
            omit_non_finite,
            fallback,
            truncate_rank,
            rotate,
            crossover,
            weighted_sum,
            n_average,
            slerp,
            add_difference,
            scale,
            subtract,
            perpendicular_component,
            train_difference_mask,
            add_opposite_mask,
            add_strict_opposite_mask,
            geometric_sum,
            multiply_quotient,
            add_cosine_a,
            add_cosine_b,
            clamp,
            tensor_sum,
            top_k_tensor_sum,
        )
    }
)
