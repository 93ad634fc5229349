"""Cold build and no-op rebuild of the whole registry, against load + validate + link alone
(targets: cold ≤ 3 × the baseline; no-op ≤ 10 % of the cold build)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from compiler.build import build
from compiler.registry import check_registry
from compiler.resources import data_dir
from tests.bench.timing import best_time


def run() -> list[str]:
    spec = data_dir("spec")
    check_registry(spec)  # warm caches shared by both sides
    baseline = best_time(lambda: check_registry(spec), repeat=3)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "generated"

        def cold() -> None:
            shutil.rmtree(out, ignore_errors=True)
            assert build(spec, out).ok

        cold_s = best_time(cold, repeat=3)
        noop_s = best_time(lambda: build(spec, out), repeat=5)
        files = sum(1 for p in out.rglob("*") if p.is_file())
    return [
        f"{files} files: cold build {cold_s * 1000:.0f} ms; no-op rebuild {noop_s * 1000:.0f} ms; "
        f"load+validate+link {baseline * 1000:.0f} ms",
        f"ratio cold / baseline = {cold_s / baseline:.2f} (target <= 3)",
        f"ratio no-op / cold = {noop_s / cold_s:.2f} (target <= 0.10)",
    ]
