"""The elementwise engine: elementwise recipes merged as streams of elements, chunk by chunk.

When every merge line of a recipe is elementwise (:data:`ELEMENTWISE`) with constant weights,
and every input holds every key in a dtype the kernels read, the output is a function of each
element position alone. Tensors then need no separate treatment: output tensors that lie
back to back, whose inputs' bytes also lie back to back with the same dtypes and weights, form
one :class:`Run` — for checkpoints written by the same serializer, a handful of runs cover the
whole file. A run's recipe lines are compiled once into a kernel (see
:mod:`compiler.merge.elementwise`). Each run is cut into chunks of :data:`CHUNK` elements; worker
threads take chunks in file order, read each input's bytes for the chunk straight into a
preallocated buffer with one positioned read, run the kernel over them (widening to float32,
the recipe's arithmetic, narrowing the result: in the C extension's fused loop where it runs,
else in numpy) and write the result at its planned offset. Buffers are sized to a chunk, so
memory does not grow with the model, and the output does not depend on which thread did what.
The kernels release the GIL, and the reads and writes release it too, so the threads run in
parallel.
"""

from __future__ import annotations

import bisect
import dataclasses
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compiler.merge import elementwise
from compiler.merge.elementwise import (
    CONSTANTS,
    ELEMENTWISE,
    ITEMSIZE,
    NARROWED,
    WIDENED,
    Builder,
    Kernel,
    Method,
    Register,
    Value,
    evaluate,
    float32,
)
from compiler.merge.output import OutputFile, OutputTensor
from compiler.merge.program import Call, Program, constant, is_varargs, spread
from compiler.tensorfile import SafetensorsHeader
from compiler.tensorfile.positioned import read_at, write_at

if TYPE_CHECKING:
    from compiler.merge.numpy_kernels import Workspace

SYNC_BYTES = 32 << 20  # written bytes between flushes to disk while merging
CHUNK = 1 << 18  # elements: a chunk's buffers stay in the CPU's cache, Python calls stay few
Progress = Callable[[int, int], None]  # (tensors finished, bytes written) since the last call

# per expression: a model line (its input index) or a method with its arguments, where an int
# is the index of an expression and a float a constant, a float32 value (a tuple for ``*args``)
Slot = int | float | tuple[int | float, ...]
Line = tuple[int, Method | None, tuple[tuple[str, Slot], ...]]


@dataclass(frozen=True, slots=True)
class Run:
    """Output tensors merged as one stream: ``count`` elements at ``begin`` in the output
    (written as ``dtype``), read from ``sources`` (per model line: file offset and dtype)."""

    begin: int
    dtype: str
    sources: Mapping[int, tuple[int, str]]
    count: int
    lines: tuple[Line, ...]
    ends: tuple[int, ...]  # element positions where an output tensor ends, for the progress
    kernel: Kernel  # the lines compiled, over the model lines' inputs in line order
    models: tuple[int, ...]  # those model lines: the inputs' indexes, in the kernel's order


@dataclass(frozen=True, slots=True)
class Chunk:
    run: Run
    start: int
    count: int


def elementwise_lines(
    program: Program, order: Sequence[int], block: str | None
) -> tuple[Line, ...] | None:
    """The recipe as elementwise lines for keys of ``block``, or None when a line is not elementwise
    (a literal, a conversion, another method) or a weight is not a number."""
    lines: list[Line] = []
    for index in order:
        node = program[index]
        if node == index:  # a model line
            lines.append((index, None, ()))
            continue
        if not isinstance(node, Call) or node.method not in ELEMENTWISE:
            return None
        slots = _slots(node, block)
        if slots is None:
            return None
        lines.append((index, ELEMENTWISE[node.method], slots))
    return tuple(lines)


def _slots(call: Call, block: str | None) -> tuple[tuple[str, Slot], ...] | None:
    """The arguments of ``call`` for keys of ``block``: tensors from other lines, and constants
    that are numbers where the elementwise methods take constants; None for anything else."""
    slots: list[tuple[str, Slot]] = []
    for name, argument in call.arguments:
        values: list[int | float] = []
        for operand in spread(argument):
            if (operand[0] == "ref") == (name in CONSTANTS):
                return None
            if operand[0] == "ref":
                assert isinstance(operand[1], int)
                values.append(operand[1])
                continue
            value = constant(operand, block)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            values.append(float32(value))
        slots.append((name, tuple(values) if is_varargs(argument) else values[0]))
    return tuple(slots)


def plan_runs(
    tensors: Sequence[OutputTensor],
    data_start: int,
    headers: Mapping[int, SafetensorsHeader],
    lines_of: Callable[[str], tuple[Line, ...] | None],
) -> list[Run] | None:
    """The output's tensors grouped into runs, or None when one cannot be streamed (a key some
    input lacks, a dtype the kernels do not read or write, a weight that is not a number)."""
    runs: list[Run] = []
    ends: list[list[int]] = []
    for tensor in tensors:
        lines = lines_of(tensor.key)
        sources = _sources(tensor.key, headers)
        if lines is None or sources is None or tensor.dtype not in NARROWED:
            return None
        count = tensor.nbytes // ITEMSIZE[tensor.dtype]
        if count == 0:
            continue
        begin = data_start + tensor.begin
        if runs and _continues(runs[-1], begin, sources, tensor.dtype, lines):
            runs[-1] = dataclasses.replace(runs[-1], count=runs[-1].count + count)
            ends[-1].append(runs[-1].count)
        else:
            kernel, models = compile_lines(lines, sources, tensor.dtype)
            runs.append(Run(begin, tensor.dtype, sources, count, lines, (), kernel, models))
            ends.append([count])
    return [dataclasses.replace(run, ends=tuple(at)) for run, at in zip(runs, ends, strict=True)]


def compile_lines(
    lines: Sequence[Line], sources: Mapping[int, tuple[int, str]], dtype: str
) -> tuple[Kernel, tuple[int, ...]]:
    """``lines`` as a kernel reading the model lines' ``sources`` and storing ``dtype``, with
    the model lines in the order the kernel reads them."""
    builder = Builder()
    registers: dict[int, Register] = {}
    models: list[int] = []
    for index, method, slots in lines:
        if method is None:
            registers[index] = builder.load(sources[index][1])
            models.append(index)
            continue

        def value(slot: int | float) -> Register | float:
            return registers[slot] if isinstance(slot, int) else slot

        arguments: dict[str, Value] = {
            name: tuple(value(s) for s in slot) if isinstance(slot, tuple) else value(slot)
            for name, slot in slots
        }
        registers[index] = method(arguments, builder)
    return builder.store(registers[lines[-1][0]], dtype), tuple(models)


def _sources(
    key: str, headers: Mapping[int, SafetensorsHeader]
) -> dict[int, tuple[int, str]] | None:
    sources: dict[int, tuple[int, str]] = {}
    for index, header in headers.items():
        if key not in header.tensors:
            return None
        info = header.tensors[key]
        if info.dtype not in WIDENED:
            return None
        sources[index] = (header.data_start + info.data_offsets[0], info.dtype)
    return sources


def _continues(
    run: Run, begin: int, sources: Mapping[int, tuple[int, str]], dtype: str, lines: object
) -> bool:
    """Whether a tensor at ``begin`` with these sources extends ``run`` without a gap."""
    if dtype != run.dtype or lines != run.lines or begin != run.begin + run.count * ITEMSIZE[dtype]:
        return False
    for index, (offset, source_dtype) in sources.items():
        start, run_dtype = run.sources[index]
        if source_dtype != run_dtype or offset != start + run.count * ITEMSIZE[run_dtype]:
            return False
    return True


def chunks(runs: Sequence[Run], size: int = CHUNK) -> Iterator[Chunk]:
    """Every run cut into chunks of ``size`` elements, in file order."""
    for run in runs:
        for start in range(0, run.count, size):
            yield Chunk(run, start, min(size, run.count - start))


class _Workspace:
    """One thread's buffers, each a chunk long (no allocation while merging)."""

    def __init__(self, runs: Sequence[Run], size: int) -> None:
        inputs = max((len(run.models) for run in runs), default=0)
        width = max((ITEMSIZE[d] for run in runs for _, d in run.sources.values()), default=1)
        # anonymous maps: pages come as a chunk first touches them (a bytearray is zeroed, all
        # of it, in every thread, whatever the chunks' dtypes)
        self.raw = [memoryview(mmap.mmap(-1, size * width)) for _ in range(inputs)]
        self.out = memoryview(mmap.mmap(-1, 4 * size))
        self.size = size
        self.numpy: Workspace | None = None  # made when a chunk runs in numpy

    def numpy_space(self, kernel: Kernel) -> Workspace:
        if self.numpy is None or len(self.numpy.registers) < kernel.registers:
            from compiler.merge.numpy_kernels import Workspace

            self.numpy = Workspace(kernel.registers, self.size)
        return self.numpy


def merge_chunk(chunk: Chunk, fds: Mapping[int, int], out: OutputFile, space: _Workspace) -> None:
    """Read, merge and write one chunk: in the C extension's fused loop where it runs, else in
    numpy (imported only then)."""
    run, start, count = chunk.run, chunk.start, chunk.count
    raws = []
    for position, index in enumerate(run.models):
        offset, dtype = run.sources[index]
        width = ITEMSIZE[dtype]
        raw = space.raw[position][: count * width]
        read_at(fds[index], raw, offset + start * width, f"input {index}")
        raws.append(raw)
    if elementwise.runs_fused(run.kernel):
        data = evaluate(run.kernel, raws, count, space.out)
    else:
        from compiler.merge.numpy_kernels import execute

        data = execute(run.kernel, raws, count, space.out, space.numpy_space(run.kernel))
    write_at(out.fd, data, run.begin + start * ITEMSIZE[run.dtype])


def stream_merge(
    runs: Sequence[Run],
    fds: Mapping[int, int],
    out: OutputFile,
    threads: int,
    progress: Progress | None = None,
) -> None:
    """Merge every run into ``out`` with ``threads`` workers taking chunks in file order."""
    for fd in fds.values():
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    pending = chunks(runs)
    lock = threading.Lock()
    stop = threading.Event()
    writeback = _Writeback(out.fd)

    def work() -> None:
        space = _Workspace(runs, CHUNK)
        while not stop.is_set():
            with lock:
                chunk = next(pending, None)
            if chunk is None:
                return
            merge_chunk(chunk, fds, out, space)
            nbytes = chunk.count * ITEMSIZE[chunk.run.dtype]
            writeback.wrote(nbytes)
            if progress is not None:
                progress(_finished(chunk), nbytes)

    with writeback, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(work) for _ in range(max(1, threads))]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()
            raise


class _Writeback:
    """A thread that flushes the output to disk every :data:`SYNC_BYTES` written, so that the
    disk writes while the CPU merges and the final fsync finds little left to do."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = 0
        self.done = False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="mirc-writeback", daemon=True)

    def __enter__(self) -> _Writeback:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        with self.changed:
            self.done = True
            self.changed.notify()
        self.thread.join()

    def wrote(self, nbytes: int) -> None:
        with self.changed:
            self.pending += nbytes
            if self.pending >= SYNC_BYTES:
                self.changed.notify()

    def _run(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: self.done or self.pending >= SYNC_BYTES)
                if self.done:
                    return
                self.pending = 0
            os.fdatasync(self.fd)


def _finished(chunk: Chunk) -> int:
    """How many of the run's tensors end inside this chunk."""
    ends = chunk.run.ends
    return bisect.bisect_right(ends, chunk.start + chunk.count) - bisect.bisect_right(
        ends, chunk.start
    )
