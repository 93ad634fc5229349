"""sd-mecha's elementwise merge methods as programs of float32 operations, giving torch's
float32 results bit for bit.

The methods that combine tensors element by element with constant weights (``weighted_sum``,
``add_difference``, ``subtract``, ``scale``, ``n_average``) need no torch: the elementwise engine
(:mod:`compiler.merge.stream`) compiles a recipe's lines once into a :class:`Kernel` — loads of
the stored inputs, a few float32 operations, a store of the result — and runs it chunk by
chunk: in mirc's C extension where it was built (:data:`FUSED`: every operation on a block of
elements that stays in the CPU's first cache, float16 converted by the F16C instructions; this
module imports no numpy), else in numpy (:mod:`compiler.merge.numpy_kernels`). Each method
follows the torch kernel that :mod:`compiler.merge.methods` calls, including its rounding:

- ``torch.lerp`` computes ``fma(w, b - a, a)`` for ``|w| < 0.5`` and ``fma(w - 1, b - a, b)``
  otherwise, and ``Tensor.addcmul`` computes ``fma(b, alpha, a)``: one rounding of the exact
  ``x * y + z``. The C extension has the FMA instructions (or C's ``fmaf``). numpy has no fused
  multiply-add: without the extension the product is formed in float64 (exact: 24 + 24 bits fit
  in 53), the sum rounded to float64 and then to float32. That equals torch's single rounding
  except when the float64 sum falls exactly halfway between two float32 values while the exact
  sum does not — bits below the 53rd of the sum, a chance near 2**-29 per element for weights
  of like sizes (more where one addend is far smaller than the other) — and then the two differ
  by one float32 unit. Rounding the product and the sum separately in float32 instead would
  differ from torch in about a fifth of all elements.
- a subtraction or a product with one rounding is the same operation in both.

NaNs stay NaNs, with the sign and payload the F16C and FMA instructions give them, as torch's
vector loops do; torch's scalar loop over the last elements of a tensor (fewer than a vector)
writes its own NaN bits there (``0x7FFF`` in float16), which mirc does not copy.
"""

from __future__ import annotations

import enum
import math
import struct
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

ABI = 2  # _kernels.c's: its opcodes and arguments; an extension built from older source is not used
try:
    from compiler.merge import _kernels

    STALE = getattr(_kernels, "ABI", None) != ABI  # built by an older mirc: reinstall
except ImportError:  # installed without a C compiler: numpy alone
    STALE = False
    NATIVE_FMA = FUSED = False
else:
    NATIVE_FMA = not STALE
    FUSED = NATIVE_FMA and _kernels.fused()  # x86-64 with AVX2, FMA and F16C

# stored dtypes the kernels read (their float32 values are what torch's .float() gives)
WIDENED = frozenset({"F16", "BF16", "F32", "F64"})
# result dtypes they write
NARROWED = frozenset({"F16", "F32"})
ITEMSIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


def float32(value: float) -> float:
    """``value`` rounded to float32, as torch holds a weight (an infinity beyond float32's
    range). Python's arithmetic on such values rounded to float32 again gives float32
    arithmetic's result (double rounding from 53 bits to 24 is innocuous for +, -, *, /)."""
    try:
        rounded: float = struct.unpack("f", struct.pack("f", float(value)))[0]
    except OverflowError:  # rounds to an infinity (struct refuses to pack one it was not given)
        return math.inf if value > 0 else -math.inf
    return rounded


class Op(enum.IntEnum):
    """A program's operations; the numbers are ``_kernels.c``'s."""

    LOAD_F16 = 0
    LOAD_BF16 = 1
    LOAD_F32 = 2
    LOAD_F64 = 3
    SUB = 4  # dst = a - b
    MUL = 5  # dst = a * constant b
    FMA = 6  # dst = a * constant b + c, one rounding
    ZERO = 7
    STORE_F16 = 8
    STORE_F32 = 9


LOADS = {"F16": Op.LOAD_F16, "BF16": Op.LOAD_BF16, "F32": Op.LOAD_F32, "F64": Op.LOAD_F64}
STORES = {"F16": Op.STORE_F16, "F32": Op.STORE_F32}
MAX_REGISTERS = 32  # _kernels.c's; a kernel that needs more runs in numpy
MAX_INSTRUCTIONS = 256  # _kernels.c's, for instructions and for constants


@dataclass(frozen=True, slots=True)
class Kernel:
    """A compiled elementwise program: instructions ``(op, dst, a, b, c)`` over float32
    registers, where a load's ``a`` is an input's position and a constant operand is an index
    in ``constants``; the last instruction stores the result."""

    code: tuple[tuple[int, int, int, int, int], ...]
    constants: tuple[float, ...]  # float32 values
    registers: int
    # made once from the above, for each chunk: the C loop's operands, whether it takes the
    # kernel (its limits), the bytes of a stored element
    packed: bytes = field(init=False, repr=False, compare=False)
    packed_constants: bytes = field(init=False, repr=False, compare=False)
    fits_c: bool = field(init=False, repr=False, compare=False)
    width: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        code = array("i", [value for instruction in self.code for value in instruction])
        object.__setattr__(self, "packed", code.tobytes())
        object.__setattr__(self, "packed_constants", array("f", self.constants).tobytes())
        fits = len(self.code) <= MAX_INSTRUCTIONS and len(self.constants) <= MAX_INSTRUCTIONS
        object.__setattr__(self, "fits_c", fits and self.registers <= MAX_REGISTERS)
        object.__setattr__(self, "width", ITEMSIZE[STORED[self.code[-1][0]]])


Register = int
Value = Register | float | tuple[Register | float, ...]  # constants: float32 values


class Builder:
    """A program written line by line; each operation's result is a new register."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, int, int, int]] = []
        self.constants: list[float] = []
        self.registers = 0
        self.inputs = 0

    def _emit(self, op: Op, a: int = 0, b: int = 0, c: int = 0) -> Register:
        self.code.append((op, self.registers, a, b, c))
        self.registers += 1
        return self.registers - 1

    def _constant(self, value: float) -> int:
        self.constants.append(float32(value))
        return len(self.constants) - 1

    def load(self, dtype: str) -> Register:
        """The next input, stored as ``dtype``."""
        self.inputs += 1
        return self._emit(LOADS[dtype], self.inputs - 1)

    def sub(self, a: Register, b: Register) -> Register:
        return self._emit(Op.SUB, a, b)

    def mul(self, a: Register, b: float) -> Register:
        return self._emit(Op.MUL, a, self._constant(b))

    def fma(self, a: Register, b: float, c: Register) -> Register:
        return self._emit(Op.FMA, a, self._constant(b), c)

    def zero(self) -> Register:
        return self._emit(Op.ZERO)

    def lerp(self, a: Register, b: Register, weight: float) -> Register:
        """``torch.lerp(a, b, weight)`` (see the module docstring), ``weight`` a float32 value."""
        difference = self.sub(b, a)
        if abs(weight) < 0.5:
            return self.fma(difference, weight, a)
        return self.fma(difference, float32(weight - 1), b)

    def store(self, result: Register, dtype: str) -> Kernel:
        self.code.append((STORES[dtype], 0, result, 0, 0))
        return Kernel(tuple(self.code), tuple(self.constants), self.registers)


Method = Callable[[Mapping[str, Value], Builder], Register]


def _t(args: Mapping[str, Value], name: str) -> Register:
    value = args[name]
    assert isinstance(value, int)
    return value


def _c(args: Mapping[str, Value], name: str) -> float:
    value = args[name]
    assert isinstance(value, float)
    return value


def _is(alpha: float, value: float) -> bool:
    """methods._is: ``math.isclose`` on the float32 value, as sd-mecha tests its weights."""
    return math.isclose(float(alpha), value)


def weighted_sum(args: Mapping[str, Value], p: Builder) -> Register:
    a, b, alpha = _t(args, "a"), _t(args, "b"), _c(args, "alpha")
    if _is(alpha, 0.0):
        return a
    if _is(alpha, 1.0):
        return b
    return p.lerp(a, b, alpha)


def n_average(args: Mapping[str, Value], p: Builder) -> Register:
    models = args["models"]
    assert isinstance(models, tuple) and models
    registers = [model for model in models if isinstance(model, int)]
    assert len(registers) == len(models)
    result = registers[0]
    for i, model in enumerate(registers[1:], start=2):
        result = p.lerp(result, model, float32(1 / i))
    return result


def add_difference(args: Mapping[str, Value], p: Builder) -> Register:
    a, b, alpha = _t(args, "a"), _t(args, "b"), _c(args, "alpha")
    if _is(alpha, 0.0):
        return a
    return p.fma(b, alpha, a)


def scale(args: Mapping[str, Value], p: Builder) -> Register:
    a, alpha = _t(args, "a"), _c(args, "alpha")
    if _is(alpha, 0.0):
        return p.zero()
    if _is(alpha, 1.0):
        return a
    return p.mul(a, alpha)


def subtract(args: Mapping[str, Value], p: Builder) -> Register:
    """torch's ``a - b`` is ``add(a, b, alpha=-1)``, an fma: the same value as a subtraction,
    but where both are NaN the result is ``b``'s NaN."""
    return p.fma(_t(args, "b"), -1.0, _t(args, "a"))


ELEMENTWISE: Mapping[str, Method] = {
    fn.__name__: fn for fn in (weighted_sum, n_average, add_difference, scale, subtract)
}
# the parameters these methods take as constants; the others take tensors (other lines)
CONSTANTS = frozenset({"alpha"})


def runs_fused(kernel: Kernel) -> bool:
    """Whether the C extension runs ``kernel`` (:func:`evaluate`), else numpy
    (:func:`compiler.merge.numpy_kernels.execute`)."""
    return FUSED and kernel.fits_c


def evaluate(
    kernel: Kernel, inputs: Sequence[memoryview], count: int, out: memoryview
) -> memoryview:
    """Run ``kernel`` over ``count`` elements of ``inputs`` (stored bytes) in the C extension
    (only where :func:`runs_fused`): the bytes of the result, in ``out``."""
    data = out[: count * kernel.width]
    _kernels.evaluate(kernel.packed, kernel.packed_constants, tuple(inputs), data, count)
    return data


def fma(x: memoryview, y: float, z: memoryview, out: memoryview) -> None:
    """``out = x * y + z`` over float32 buffers with one rounding, in the C extension (only
    where :data:`NATIVE_FMA`), for kernels run in numpy."""
    _kernels.fma(x, y, z, out)


LOADED: dict[int, str] = {op: dtype for dtype, op in LOADS.items()}
STORED: dict[int, str] = {op: dtype for dtype, op in STORES.items()}
