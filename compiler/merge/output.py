"""The output file: header first, data streamed in at fixed offsets, renamed into place at the end.

The output's keys, shapes and dtypes are known before any tensor is read, so the header is
written first and every tensor has its offset; threads write their tensors with positioned
writes, and the bytes do not depend on which thread finishes first. The file is a temporary
``.NAME.PID.mirc-merge`` beside the target, fsynced and renamed (RELIABILITY rule 8); a merge
that dies leaves only that temporary, which the next merge to the same target removes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.atomicfile import fsync_folder
from compiler.tensorfile import DTYPE_BITS
from compiler.tensorfile.positioned import write_at

if TYPE_CHECKING:
    from typing_extensions import Buffer

SUFFIX = ".mirc-merge"


@dataclass(frozen=True, slots=True)
class OutputTensor:
    key: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class OutputLayout:
    tensors: tuple[OutputTensor, ...]
    header: bytes

    @property
    def data_start(self) -> int:
        return 8 + len(self.header)

    @property
    def total(self) -> int:
        return self.data_start + sum(t.nbytes for t in self.tensors)


def plan_layout(
    tensors: Mapping[str, tuple[str, tuple[int, ...]]], metadata: Mapping[str, str]
) -> OutputLayout:
    """Offsets in the safetensors serializer's order (widest dtype first, then by name)."""
    order = sorted(tensors.items(), key=lambda item: (-DTYPE_BITS[item[1][0]], item[0]))
    entries: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    placed: list[OutputTensor] = []
    offset = 0
    for key, (dtype, shape) in order:
        count = 1
        for size in shape:
            count *= size
        nbytes = count * DTYPE_BITS[dtype] // 8
        placed.append(OutputTensor(key, dtype, shape, offset, nbytes))
        entries[key] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(entries, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return OutputLayout(tuple(placed), text + b" " * (-len(text) % 8))


class OutputFile:
    """A temporary output file of a planned layout; ``commit`` renames it over the target."""

    def __init__(self, target: Path, layout: OutputLayout) -> None:
        remove_stale(target)
        self.target = target
        self.layout = layout
        self.temporary = target.with_name(f".{target.name}.{os.getpid()}{SUFFIX}")
        self.fd = os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.ftruncate(self.fd, layout.total)
            prefix = len(layout.header).to_bytes(8, "little")
            self.write_at(0, prefix + layout.header)
        except BaseException:
            self.abandon()
            raise

    def write_at(self, position: int, data: Buffer) -> None:
        write_at(self.fd, data, position)

    def write_tensor(self, tensor: OutputTensor, data: Buffer) -> None:
        self.write_at(self.layout.data_start + tensor.begin, data)

    def commit(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        os.replace(self.temporary, self.target)
        fsync_folder(self.target.parent)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.temporary.unlink(missing_ok=True)


def remove_stale(target: Path) -> None:
    """Remove temporaries of earlier merges to ``target`` whose process is gone."""
    for path in target.parent.glob(f".{target.name}.*{SUFFIX}"):
        pid = path.name[len(target.name) + 2 : -len(SUFFIX)]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
