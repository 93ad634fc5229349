"""``mirc check`` over the whole registry against the floor of plain YAML loading plus
jsonschema validation of the same files, in the same run (target ≤ 2 ×)."""

from __future__ import annotations

import yaml

from compiler.load import discover
from compiler.registry import check_registry
from compiler.resources import data_dir
from compiler.validate.schema import validators
from tests.bench.timing import best_time


def run() -> list[str]:
    spec_dir = data_dir("spec")
    files = discover(spec_dir)
    checkers = validators((spec_dir / "schema").resolve())

    def floor() -> None:
        for path, kind in files:
            with path.open(encoding="utf-8") as handle:
                value = yaml.safe_load(handle)
            for _ in checkers[kind].iter_errors(value):
                pass

    def check() -> None:
        result = check_registry(spec_dir)
        assert result.ok, result.diagnostics[:3]

    check()  # warm the caches both sides share (schemas, grammars)
    floor_s = best_time(floor, repeat=3)
    check_s = best_time(check, repeat=3)
    return [
        f"{len(files)} spec files: mirc check {check_s * 1000:.0f} ms; "
        f"yaml.safe_load + jsonschema {floor_s * 1000:.0f} ms",
        f"ratio check / floor = {check_s / floor_s:.2f} (target <= 2)",
    ]
