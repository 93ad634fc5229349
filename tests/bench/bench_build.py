"""Cold build and no-op rebuild of the whole registry, against load + validate + link alone
(targets: cold ≤ 3 × the baseline; no-op ≤ 10 % of the cold build).

Each cold build writes into a new, empty output folder (the trees are deleted after the timing,
so no deletion runs inside or just before a timed build), and the baseline and the cold build
take turns, so that a change in the machine's load reaches both sides of the ratio."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from compiler.build import build
from compiler.registry import check_registry
from compiler.resources import data_dir
from tests.bench.timing import best_time

ROUNDS = 5


def run() -> list[str]:
    spec = data_dir("spec")
    check_registry(spec)  # warm caches shared by both sides
    baseline, cold = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(ROUNDS):
            baseline.append(best_time(lambda: check_registry(spec), repeat=1))
            out = Path(tmp) / f"generated-{round_}"
            start = time.perf_counter()
            result = build(spec, out)
            cold.append(time.perf_counter() - start)
            assert result.ok, result.diagnostics
        noop_s = best_time(lambda: build(spec, out), repeat=5)
        files = sum(1 for p in out.rglob("*") if p.is_file())
    base_s, cold_s = min(baseline), min(cold)
    return [
        f"{files} files: cold build {cold_s * 1000:.0f} ms; no-op rebuild {noop_s * 1000:.0f} ms; "
        f"load+validate+link {base_s * 1000:.0f} ms (best of {ROUNDS}, taking turns)",
        f"ratio cold / baseline = {cold_s / base_s:.2f} (target <= 3)",
        f"ratio no-op / cold = {noop_s / cold_s:.2f} (target <= 0.10)",
    ]
