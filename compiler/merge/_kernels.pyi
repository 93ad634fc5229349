"""mirc merge's elementwise kernels (F16C, FMA) and fused multiply-add (``_kernels.c``)."""

from typing_extensions import Buffer

def evaluate(
    code: Buffer, constants: Buffer, inputs: tuple[Buffer, ...], out: Buffer, count: int, /
) -> None: ...
def fma(x: Buffer, y: float, z: Buffer, out: Buffer, /) -> None: ...
def fused() -> bool: ...

ABI: int
