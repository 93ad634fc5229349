"""Whole buffers read and written at file offsets, with positioned reads and writes.

``os.preadv`` and ``os.pwrite`` may move fewer bytes than asked (a signal, a pipe, a short
file); these loop until the buffer is done, so callers never see a partial transfer. They take
any writable or readable buffer — a ``bytearray``, a numpy array's memory — so tensor bytes move
between a file and the memory that computes on them without a copy in between.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer


def read_at(fd: int, buffer: Buffer, offset: int, what: str) -> None:
    """Fill ``buffer`` from ``fd`` at ``offset``; a file that ends first is an ``OSError``
    naming ``what``."""
    view = memoryview(buffer).cast("B")
    done = 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if count == 0:
            raise OSError(f"{what}: the file ended {len(view) - done} bytes early")
        done += count


def write_at(fd: int, data: Buffer, offset: int) -> None:
    """Write all of ``data`` to ``fd`` at ``offset``."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
