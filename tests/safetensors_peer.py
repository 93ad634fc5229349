"""Helpers for the safetensors tests: byte-level file builders and the peer reader's verdict.

The peer is ``safetensors.safe_open``, the format's own (Rust) reader; mirc's reader must accept
and refuse the same files, apart from the documented cases where mirc is stricter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from compiler.diagnostics import Diagnostic, MircError
from compiler.tensorfile import SafetensorsHeader, read_header


def header_bytes(header: object) -> bytes:
    """Compact JSON for ``header`` (a dict, or raw text/bytes used as they are)."""
    if isinstance(header, bytes):
        return header
    if isinstance(header, str):
        return header.encode("utf-8")
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def blob(header: object, data: int | bytes = 0, *, pad: bool = True) -> bytes:
    """A file: the 8-byte length, the header (space-padded to 8), then ``data`` (or zeros)."""
    text = header_bytes(header)
    if pad:
        text += b" " * (-len(text) % 8)
    payload = bytes(data) if isinstance(data, int) else data
    return len(text).to_bytes(8, "little") + text + payload


def tensor(
    dtype: str, shape: list[int], begin: int, end: int, **extra: object
) -> dict[str, object]:
    """One header entry."""
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end], **extra}


@dataclass(frozen=True)
class Verdict:
    """What a reader made of a file: tensors (name → (dtype, shape)) and metadata, or an error."""

    tensors: dict[str, tuple[str, tuple[int, ...]]] | None
    order: list[str] | None = None
    metadata: dict[str, str] | None = None
    offsets: dict[str, tuple[int, int]] | None = None
    error: str | None = None
    diagnostic: Diagnostic | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def peer(path: Path) -> Verdict:
    """The format's own reader on ``path``."""
    try:
        with safe_open(str(path), "np") as reader:
            tensors = {}
            for name in reader.keys():  # noqa: SIM118 (safe_open is not a mapping)
                piece = reader.get_slice(name)
                tensors[name] = (piece.get_dtype(), tuple(piece.get_shape()))
            return Verdict(tensors, list(reader.offset_keys()), reader.metadata() or {})
    except SafetensorError as error:
        return Verdict(None, error=str(error))


def ours(path: Path) -> Verdict:
    """mirc's reader on ``path``; any exception other than MircError propagates."""
    try:
        header = read_header(path)
    except MircError as error:
        diagnostic = error.diagnostics[0]
        return Verdict(None, error=diagnostic.message, diagnostic=diagnostic)
    return verdict_of(header)


def verdict_of(header: SafetensorsHeader) -> Verdict:
    tensors = {name: (info.dtype, info.shape) for name, info in header.tensors.items()}
    offsets = {name: info.data_offsets for name, info in header.tensors.items()}
    return Verdict(tensors, list(header.tensors), dict(header.metadata), offsets)


def same_reading(mine: Verdict, theirs: Verdict) -> bool:
    """Both accepted the same tensors and metadata, in the same offset order.

    Empty tensors can share an offset, and the peer orders those at random, so the test is that
    the peer's order is sorted by mirc's offsets (and mirc's own order is too).
    """
    if mine.tensors != theirs.tensors or mine.metadata != theirs.metadata:
        return False
    assert mine.order is not None and theirs.order is not None and mine.offsets is not None
    in_our_order = [mine.offsets[name] for name in mine.order]
    in_their_order = [mine.offsets[name] for name in theirs.order]
    return in_our_order == sorted(in_our_order) and in_their_order == sorted(in_their_order)
