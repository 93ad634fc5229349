"""Stored floats to float32 and back in numpy, bit for bit as torch converts them.

numpy's own float16 casts run one element at a time (about 5 ns each, slower than reading the
file); these are a handful of whole-array integer and float operations instead, each a SIMD
loop over a chunk that stays in cache:

- float16 → float32: the 15 magnitude bits shifted into float32's exponent and mantissa
  fields, then scaled by 2**112 (the difference of the exponent biases) — one multiply that
  also normalises float16's subnormals. Infinities and NaNs (exponent 31) are rare and patched
  afterwards; NaNs come out quiet, as torch's (F16C) conversion makes them.
- float32 → float16, rounding to nearest even: adding and subtracting ``2**(e + 13)`` (``e``
  the value's exponent, at least float16's smallest, -14) makes the FPU itself round away the
  13 extra mantissa bits; the rounded value, scaled by 2**-112, holds the float16 bits shifted
  by 13. Chunks with values that overflow float16 or NaNs take numpy's exact cast instead,
  with torch's NaN bits (sign, quiet bit and the top of the payload kept).
- bfloat16 is float32's upper half: widening is a shift; float32 → bfloat16 is left to torch,
  whose vector and scalar conversions disagree on NaN bits.

The tests compare every float16 pattern, and a million float32 patterns, with torch.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32]
Words = NDArray[np.uint32]
Halves = NDArray[np.uint16]

_SCALE_UP = np.float32(2.0**112)
_SCALE_DOWN = np.float32(2.0**-112)
_SIGN_AND_LOW_BITS = np.int32(-0x70000001)  # 0x8FFFFFFF: clears the sign copies of bits 28-30
_HALF_EXPONENT = np.uint16(0x7C00)
_ABS = np.uint32(0x7FFFFFFF)
_EXPONENT = np.uint32(0x7F800000)
_SMALLEST_NORMAL_HALF = np.int32(0x38800000)  # 2**-14 as float32 bits
_MAGIC_SHIFT = np.uint32(13 << 23)  # times 2**13: the magic's last bit is float16's
_HALF_LIMIT = 0x477FF000  # float32 bits of 65520, the first value that rounds to infinity
_SIGN_HALF = np.uint32(0x8000)


def widen(raw: NDArray[np.uint8], dtype: str, out: Floats, flags: Halves) -> Floats:
    """The float32 values of ``raw`` (little-endian ``dtype`` elements), in ``out`` — or ``raw``
    itself viewed as float32 when it already is; ``flags`` is scratch of ``out``'s length."""
    if dtype == "F32":
        return raw.view(np.float32)
    if dtype == "F16":
        half_to_float(raw.view(np.uint16), out, flags)
    elif dtype == "BF16":
        words = out.view(np.uint32)
        np.copyto(words, raw.view(np.uint16), casting="unsafe")
        np.left_shift(words, 16, out=words)
    else:
        np.copyto(out, raw.view(np.float64), casting="same_kind")
    return out


def half_to_float(bits: Halves, out: Floats, flags: Halves) -> None:
    """float16 ``bits`` as float32 values in ``out``."""
    words = out.view(np.int32)
    np.copyto(words, bits.view(np.int16), casting="unsafe")  # the sign lands in bits 28-31
    np.left_shift(words, 13, out=words)
    np.bitwise_and(words, _SIGN_AND_LOW_BITS, out=words)
    np.multiply(out, _SCALE_UP, out=out)
    np.bitwise_and(bits, _HALF_EXPONENT, out=flags)
    if len(flags) and flags.max() == _HALF_EXPONENT:
        _infinities_and_nans(bits, out)


def _infinities_and_nans(bits: Halves, out: Floats) -> None:
    special = np.bitwise_and(bits, _HALF_EXPONENT) == _HALF_EXPONENT
    half = bits[special].astype(np.uint32)
    mantissa = half & 0x3FF
    quiet = (mantissa != 0).astype(np.uint32) << 22
    words = (half & 0x8000) << 16 | 0x7F800000 | mantissa << 13 | quiet
    out.view(np.uint32)[special] = words


def narrow(values: Floats, dtype: str, raw: NDArray[np.uint8], scratch: Words) -> NDArray[np.uint8]:
    """``values`` stored as ``dtype`` in ``raw`` (or ``values``' own bytes for float32), the
    bytes to write; ``scratch`` holds two words per value."""
    if dtype == "F32":
        return values.view(np.uint8)
    count = len(values)
    magnitude, magic = scratch[:count], scratch[count : 2 * count]
    float_to_half(values, raw[: 2 * count].view(np.uint16), magnitude, magic)
    return raw[: 2 * count]


def float_to_half(values: Floats, out: Halves, magnitude: Words, magic: Words) -> None:
    """float32 ``values`` rounded to nearest even as float16 bits in ``out``."""
    words = values.view(np.uint32)
    np.bitwise_and(words, _ABS, out=magnitude)
    if len(magnitude) and magnitude.max() >= _HALF_LIMIT:
        _exact_half(values, out)
        return
    exponent = magic.view(np.int32)
    np.bitwise_and(words, _EXPONENT, out=magic)
    np.maximum(exponent, _smallest_normal(len(exponent)), out=exponent)
    np.add(magic, _MAGIC_SHIFT, out=magic)
    rounded, offset = magnitude.view(np.float32), magic.view(np.float32)
    np.add(rounded, offset, out=rounded)
    np.subtract(rounded, offset, out=rounded)
    np.multiply(rounded, _SCALE_DOWN, out=rounded)
    np.right_shift(magnitude, 13, out=magnitude)
    np.right_shift(words, 16, out=magic)
    np.bitwise_and(magic, _SIGN_HALF, out=magic)
    np.bitwise_or(magnitude, magic, out=magnitude)
    np.copyto(out, magnitude, casting="unsafe")


@functools.lru_cache(maxsize=8)
def _smallest_normal(count: int) -> NDArray[np.int32]:
    """``count`` copies of float16's smallest normal exponent: numpy's maximum of two arrays is
    a vector loop, with a scalar it takes twice as long."""
    floor = np.full(count, _SMALLEST_NORMAL_HALF, np.int32)
    floor.flags.writeable = False
    return floor


def _exact_half(values: Floats, out: Halves) -> None:
    """numpy's exact cast (infinities for overflow), NaNs as torch writes them."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out.view(np.float16), values, casting="same_kind")
    nan = np.isnan(values)
    if nan.any():
        words = values.view(np.uint32)[nan]
        out[nan] = (words >> 16 & 0x8000 | 0x7E00 | words >> 13 & 0x3FF).astype(np.uint16)
