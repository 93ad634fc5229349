"""Run every benchmark in tests/bench/ (modules named bench_*.py exposing ``run()``).

Each benchmark prints its figures as ratios against a baseline measured in the same run, since
the machines are noisy. Usage: ``python3 tests/bench/run.py [NAME…]`` (e.g. ``mir``).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def main(names: list[str]) -> int:
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    chosen = [m for m in modules if not names or m.removeprefix("bench_") in names]
    for name in chosen:
        start = time.perf_counter()
        module = importlib.import_module(f"tests.bench.{name}")
        print(f"== {name.removeprefix('bench_')}", flush=True)
        for line in module.run():
            print(f"   {line}", flush=True)
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
