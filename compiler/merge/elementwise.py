"""sd-mecha's elementwise merge methods in numpy, giving torch's float32 results bit for bit.

The methods that combine tensors element by element with constant weights (``weighted_sum``,
``add_difference``, ``subtract``, ``scale``, ``n_average``) need no torch: the numpy engine
(:mod:`compiler.merge.stream`) runs them chunk by chunk. Each follows the torch kernel that
:mod:`compiler.merge.methods` calls, including its rounding:

- ``torch.lerp`` computes ``fma(w, b - a, a)`` for ``|w| < 0.5`` and ``fma(w - 1, b - a, b)``
  otherwise, and ``Tensor.addcmul`` computes ``fma(b, alpha, a)``: one rounding of the exact
  ``x * y + z``. numpy has no fused multiply-add; mirc's C extension ``_kernels`` has one (the
  CPU's FMA instructions, or C's ``fmaf``), used where it was built (:data:`NATIVE_FMA`).
  Without it the product is formed in float64 (exact: 24 + 24 bits fit in 53), the sum rounded
  to float64 and then to float32. That equals torch's single rounding except when the float64
  sum falls exactly halfway between two float32 values while the exact sum does not — bits
  below the 53rd of the sum, a chance near 2**-29 per element — and then the two differ by one
  float32 unit. Rounding the product and the sum separately in float32 instead would differ
  from torch in about a fifth of all elements.
- a subtraction or a product with one rounding is the same operation in both.

Arguments arrive as float32 chunks, constants as float32 scalars; a method writes into ``out``
(never into an argument, which a later line may use again) or returns an argument unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

try:
    from compiler.merge import _kernels
except ImportError:  # installed without a C compiler: products in float64 instead
    NATIVE_FMA = False
else:
    NATIVE_FMA = True

Floats = NDArray[np.float32]
Wide = NDArray[np.float64]
Value = Floats | np.float32 | tuple[Floats | np.float32, ...]


@dataclass(frozen=True, slots=True)
class Scratch:
    """Two float64 arrays at least as long as the chunks, for the fused multiply-adds."""

    product: Wide
    addend: Wide


ElementwiseFn = Callable[[Mapping[str, Value], Floats, Scratch], Floats]


def _t(args: Mapping[str, Value], name: str) -> Floats:
    value = args[name]
    assert isinstance(value, np.ndarray)
    return value


def _c(args: Mapping[str, Value], name: str) -> np.float32:
    value = args[name]
    assert isinstance(value, np.float32)
    return value


def _is(alpha: np.float32, value: float) -> bool:
    """methods._is: ``math.isclose`` on the float32 value, as sd-mecha tests its weights."""
    return math.isclose(float(alpha), value)


def fused_multiply_add(x: Floats, y: np.float32, z: Floats, out: Floats, scratch: Scratch) -> None:
    """``out = x * y + z`` with torch's single rounding (see the module docstring); ``x`` may
    lie in ``scratch.addend``, and ``out`` may be ``x`` or ``z``."""
    if NATIVE_FMA:
        _kernels.fma(x.data, float(y), z.data, out.data)
        return
    count = len(out)
    product, addend = scratch.product[:count], scratch.addend[:count]
    np.copyto(product, x)
    np.multiply(product, np.float64(y), out=product)
    np.copyto(addend, z)
    np.add(product, addend, out=product)
    np.copyto(out, product, casting="same_kind")


def lerp(a: Floats, b: Floats, weight: np.float32, out: Floats, scratch: Scratch) -> None:
    """``torch.lerp(a, b, weight)`` (``a``, ``b`` float32, ``weight`` a float32 scalar);
    ``out`` may be ``a`` or ``b``."""
    count = len(out)
    difference = scratch.addend.view(np.float32)[:count]
    np.subtract(b, a, out=difference)
    if abs(weight) < 0.5:
        fused_multiply_add(difference, weight, a, out, scratch)
    else:
        fused_multiply_add(difference, np.float32(weight - np.float32(1)), b, out, scratch)


def weighted_sum(args: Mapping[str, Value], out: Floats, scratch: Scratch) -> Floats:
    a, b, alpha = _t(args, "a"), _t(args, "b"), _c(args, "alpha")
    if _is(alpha, 0.0):
        return a
    if _is(alpha, 1.0):
        return b
    lerp(a, b, alpha, out, scratch)
    return out


def n_average(args: Mapping[str, Value], out: Floats, scratch: Scratch) -> Floats:
    models = args["models"]
    assert isinstance(models, tuple) and models
    arrays = [model for model in models if isinstance(model, np.ndarray)]
    assert len(arrays) == len(models)
    result: Floats = arrays[0]
    for i, model in enumerate(arrays[1:], start=2):
        lerp(result, model, np.float32(1 / i), out, scratch)
        result = out
    return result


def add_difference(args: Mapping[str, Value], out: Floats, scratch: Scratch) -> Floats:
    a, b, alpha = _t(args, "a"), _t(args, "b"), _c(args, "alpha")
    if _is(alpha, 0.0):
        return a
    fused_multiply_add(b, alpha, a, out, scratch)
    return out


def scale(args: Mapping[str, Value], out: Floats, scratch: Scratch) -> Floats:
    a, alpha = _t(args, "a"), _c(args, "alpha")
    if _is(alpha, 0.0):
        out.fill(0)
        return out
    if _is(alpha, 1.0):
        return a
    np.multiply(a, alpha, out=out)
    return out


def subtract(args: Mapping[str, Value], out: Floats, scratch: Scratch) -> Floats:
    np.subtract(_t(args, "a"), _t(args, "b"), out=out)
    return out


ELEMENTWISE: Mapping[str, ElementwiseFn] = {
    fn.__name__: fn for fn in (weighted_sum, n_average, add_difference, scale, subtract)
}
# the parameters these methods take as constants; the others take tensors (other lines)
CONSTANTS = frozenset({"alpha"})
