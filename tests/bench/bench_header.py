"""Headers per second: ``read_header`` against ``safetensors.safe_open(path, "pt").keys()``.

A temporary folder gets the 1,000 sparse safetensors files of ``collection``: SD1.5 single-file
checkpoints, SD1.5 and SDXL kohya LoRAs with the trainer's metadata, and textual-inversion
embeddings. Each reader reads every file's header; the best of several interleaved rounds counts.
Both readers validate the whole header; mirc also builds its typed result, safe_open a list of
names. Each round is like a run of mirc: its memos (shape spellings, and the tables of headers
whose entries repeat one read before) start empty. The last line empties the memo of tables before
every file: each header read as if its layout were new.

    PYTHONPATH=$PWD python3 -c 'from tests.bench.bench_header import run; print(*run(), sep="\\n")'
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from compiler.tensorfile import read_header
from tests.bench.collection import best_times, safe_open_keys, unremembered, write_collection

ROUNDS = 7


def run() -> list[str]:
    """Build the folder, time both readers on it, and return the report lines."""
    with tempfile.TemporaryDirectory(prefix="mirc-bench-header-") as folder:
        groups = write_collection(Path(folder))
        _check_same_names(path for paths in groups.values() for path in paths)
        lines = [_describe(groups)]
        totals = [0.0, 0.0]
        for kind, paths in groups.items():
            mine, theirs = best_times(paths, read_header, ROUNDS)
            totals = [totals[0] + mine, totals[1] + theirs]
            lines.append(_line(kind + "s", len(paths), mine, theirs))
        count = sum(len(paths) for paths in groups.values())
        lines.append(_line("all files", count, *totals) + " (target 2.00×)")
        every = [path for paths in groups.values() for path in paths]
        mine, theirs = best_times(every, unremembered(read_header), ROUNDS)
        lines.append(_line("all files, each as if its layout were new", count, mine, theirs))
    return lines


def _describe(groups: dict[str, list[Path]]) -> str:
    kinds = (f"{len(paths)} {kind}s ({_tensors(paths)})" for kind, paths in groups.items())
    count = sum(len(paths) for paths in groups.values())
    return f"{count} sparse safetensors files: " + ", ".join(kinds)


def _line(label: str, count: int, mine: float, theirs: float) -> str:
    return (
        f"{label}: mirc {count / mine:,.0f} headers/s, safe_open {count / theirs:,.0f} headers/s, "
        f"mirc/safe_open {theirs / mine:.2f}×"
    )


def _tensors(paths: list[Path]) -> str:
    sizes = sorted(len(read_header(path).tensors) for path in paths)
    low, high = sizes[0], sizes[-1]
    return f"{low} tensors" if low == high else f"{low}–{high} tensors"


def _check_same_names(paths: Iterable[Path]) -> None:
    for path in paths:
        assert sorted(read_header(path).tensors) == safe_open_keys(path), path
