"""Reading a 10,000-line Mecha recipe: mirc (parse, parse + check) against sd_mecha.deserialize.

Each figure is a ratio against sd-mecha 1.1.8's reader timed in the same run, on the same text.
Times are CPU seconds of this process (best of three), which a busy machine disturbs less than
wall-clock time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LINES = 10_000
REPEATS = 3


def bench_recipe(lines: int = LINES) -> str:
    """A valid recipe of ``lines`` lines mixing every kind of line sd-mecha writes."""
    out = ["version 0.1.0"]
    weights: list[int] = []
    count = 0

    def add(line: str) -> int:
        nonlocal count
        out.append(line)
        count += 1
        return count - 1

    while len(out) < lines:
        if len(weights) < 2 or len(out) % 25 == 0:
            path = f'models/fine-tune \\"{len(out)}\\".safetensors'
            weights.append(add(f'model "{path}" model_config="sdxl-sgm" merge_space="weight"'))
        elif len(out) % 10 == 0:
            blocks = add(f"dict BASE=0.0 IN00=0.{len(out) % 9} OUT08=1.0 VAE=0")
            alpha = add(
                f'literal &{blocks} model_config="sdxl-supermerger_blocks" merge_space=null'
            )
            weights.append(
                add(f'merge "weighted_sum" &{weights[-1]} &{weights[-2]} alpha=&{alpha}')
            )
        elif len(out) % 7 == 0:
            out.append(f"# step {len(out)}: add what one model learned over another")
            delta = add(f'merge "subtract" &{weights[-1]} &{weights[-3 % len(weights)]}')
            weights.append(add(f'merge "add_difference" &{weights[-2]} &{delta} alpha=0.5'))
        else:
            alpha = f"{(len(out) % 97) / 97!s}"
            weights.append(add(f'merge "slerp" &{weights[-1]} &{weights[-2]} alpha={alpha}'))
    return "\n".join(out[:lines])


def best_of(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return min(times)


def run() -> list[str]:
    """Lines to print: lines per second and the ratio against sd-mecha, parse and parse + check."""
    import sd_mecha

    from compiler.lang.mecha.check import check_recipe
    from compiler.lang.mecha.parser import parse_recipe

    text = bench_recipe()
    assert not [d for d in check_recipe(parse_recipe(text)) if d.is_error]
    baseline = best_of(lambda: sd_mecha.deserialize(text))
    parse = best_of(lambda: parse_recipe(text))
    checked = best_of(lambda: check_recipe(parse_recipe(text)))
    rate = LINES / baseline
    return [
        f"mecha: sd_mecha.deserialize, {LINES} lines: {baseline:.3f} s ({rate:,.0f} lines/s)",
        f"mecha: mirc parse: {parse:.3f} s ({LINES / parse:,.0f} lines/s), "
        f"{baseline / parse:.1f}x sd-mecha's speed",
        f"mecha: mirc parse + check: {checked:.3f} s ({LINES / checked:,.0f} lines/s), "
        f"{baseline / checked:.1f}x sd-mecha's speed",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
