"""Elementwise kernels (:class:`~compiler.merge.elementwise.Kernel`) run in numpy, a pass over
the chunk per instruction: where mirc's C extension does not run them (installed without a C
compiler, a CPU without AVX2, FMA or F16C, a kernel larger than the C loop takes). Same bits:
float16 and bfloat16 converted by :mod:`compiler.merge.floats`, fused multiply-adds by the
extension's ``fma`` where it was built, else formed in float64 (the module docstring of
:mod:`compiler.merge.elementwise` says when that rounds differently).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from compiler.merge import elementwise
from compiler.merge.elementwise import LOADED, STORED, Kernel, Op
from compiler.merge.floats import narrow, widen

Floats = NDArray[np.float32]
_QUIET = np.uint32(0x00400000)  # float32's quiet NaN bit


class Workspace:
    """One thread's buffers for :func:`execute`, each a chunk long (no allocation per chunk)."""

    def __init__(self, registers: int, size: int) -> None:
        self.registers = [np.empty(size, np.float32) for _ in range(registers)]
        self.flags = np.empty(size, np.uint16)
        self.product = np.empty(size, np.float64)
        self.addend = np.empty(size, np.float64)
        self.words = np.empty(2 * size, np.uint32)


def execute(
    kernel: Kernel, inputs: Sequence[memoryview], count: int, out: memoryview, space: Workspace
) -> memoryview:
    """Run ``kernel`` over ``count`` elements of ``inputs`` (stored bytes): the bytes of the
    result, in ``out`` (or a float32 register's own bytes, stored as they are)."""
    raws = [np.frombuffer(raw, np.uint8) for raw in inputs]
    values: list[Floats] = [register[:count] for register in space.registers]
    with np.errstate(all="ignore"):  # infinities and NaNs are values here, as in torch
        for op, dst, a, b, c in kernel.code:
            if op in LOADED:
                values[dst] = widen(raws[a], LOADED[op], values[dst], space.flags[:count])
            elif op == Op.SUB:
                np.subtract(values[a], values[b], out=values[dst])
            elif op == Op.MUL:
                np.multiply(values[a], np.float32(kernel.constants[b]), out=values[dst])
            elif op == Op.FMA:
                fused_multiply_add(values[a], kernel.constants[b], values[c], values[dst], space)
            elif op == Op.ZERO:
                values[dst].fill(0)
            else:
                result = narrow(values[a], STORED[op], np.frombuffer(out, np.uint8), space.words)
                return result.data
    raise AssertionError("a kernel ends with a store")


def fused_multiply_add(x: Floats, y: float, z: Floats, out: Floats, space: Workspace) -> None:
    """``out = x * y + z`` with torch's single rounding, or the float64 product's (see
    :mod:`compiler.merge.elementwise`); ``out`` may be ``x`` or ``z``."""
    if elementwise.NATIVE_FMA:
        elementwise.fma(x.data, y, z.data, out.data)
        return
    # An FMA gives the first NaN of x, y, z, quieted. The float64 sum does too, but for a NaN
    # z where x * y is an invalid 0 * inf: its sum keeps the product's NaN. z's NaNs are kept
    # (before ``out``, which may be z, is written) and put back.
    nans = np.isnan(z) & ~np.isnan(x) if not math.isnan(y) else None
    kept = z.view(np.uint32)[nans] | _QUIET if nans is not None and nans.any() else None
    count = len(out)
    product, addend = space.product[:count], space.addend[:count]
    np.copyto(product, x)
    np.multiply(product, np.float64(y), out=product)
    np.copyto(addend, z)
    np.add(product, addend, out=product)
    np.copyto(out, product, casting="same_kind")
    if kept is not None:
        out.view(np.uint32)[nans] = kept
