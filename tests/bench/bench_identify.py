"""Headers per second through the whole ``identify`` (read + match against every fingerprint of
the registry, dtype breakdown, layout hashes) against ``safetensors.safe_open(path, "pt").keys()``,
and once more without the two layout hashes (what matching alone costs).

The folder is ``bench_header``'s: 1,000 sparse files (SD1.5 single-file checkpoints, kohya LoRAs
with trainer metadata, textual-inversion embeddings). The registry is loaded once, before the
clock starts, as ``mirc identify`` does once per run. Best of several interleaved rounds.

    PYTHONPATH=$PWD python3 -c 'from tests.bench.bench_identify import run; print(*run())'
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from compiler.identify import Candidate, candidates, identify_file
from compiler.registry import check_registry
from tests.bench.bench_header import _safe_open_keys, _write_collection
from tests.conftest import ROOT

ROUNDS = 5


def run() -> list[str]:
    """Build the folder, time both on it, and return the report lines."""
    linked = check_registry(Path(ROOT, "spec")).linked
    assert linked is not None
    pool = candidates(linked)
    with tempfile.TemporaryDirectory(prefix="mirc-bench-identify-") as folder:
        groups = _write_collection(Path(folder))
        lines = [
            f"{len(pool)} registry fingerprints, each scored against every file",
            _identified(groups, pool),
        ]
        totals = [0.0, 0.0]
        for kind, paths in groups.items():
            mine, theirs = _best_times(paths, lambda path: identify_file(path, pool))
            totals = [totals[0] + mine, totals[1] + theirs]
            lines.append(_line(kind + "s", len(paths), mine, theirs))
        count = sum(len(paths) for paths in groups.values())
        lines.append(_line("all files", count, *totals) + " (target 2.00×)")
        every = [path for paths in groups.values() for path in paths]
        mine, theirs = _best_times(
            every, lambda path: identify_file(path, pool, layout_hashes=False)
        )
        lines.append(_line("all files, without the layout hashes", count, mine, theirs))
    return lines


def _identified(groups: dict[str, list[Path]], pool: tuple[Candidate, ...]) -> str:
    """How many files of each kind match a fingerprint (bench_header's LoRAs use key names no
    trainer writes, so they are scored in full and come out unknown)."""
    counts = (
        f"{sum(identify_file(p, pool).known for p in paths)}/{len(paths)} {kind}s"
        for kind, paths in groups.items()
    )
    return "identified: " + ", ".join(counts)


def _line(label: str, count: int, mine: float, theirs: float) -> str:
    return (
        f"{label}: mirc identify {count / mine:,.0f} files/s, safe_open keys "
        f"{count / theirs:,.0f} headers/s, identify/safe_open {theirs / mine:.2f}×"
    )


def _best_times(paths: list[Path], ours: Callable[[Path], object]) -> tuple[float, float]:
    readers: dict[str, Callable[[Path], object]] = {"mirc": ours, "safe_open": _safe_open_keys}
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(ROUNDS):
        for name, reader in readers.items():
            start = time.perf_counter()
            for path in paths:
                reader(path)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["mirc"], best["safe_open"]
