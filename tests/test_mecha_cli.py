"""``mirc recipe check|fmt``: exit statuses, output, snapshots of each failure mode, writing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, check_snapshot, run_mirc

FIXTURES = ROOT / "tests" / "fixtures" / "mecha"
BAD = sorted((FIXTURES / "bad").glob("*.mecha"))
SPEC_RECIPES = sorted((ROOT / "spec" / "recipes").glob("*.mecha"))


def test_the_shipped_example_recipes_check() -> None:
    run = run_mirc("recipe", "check", *map(str, SPEC_RECIPES))
    assert run.status == 0, run.err
    assert len(SPEC_RECIPES) >= 2
    assert run.out.count(": ok (") == len(SPEC_RECIPES)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_each_bad_recipe_is_rejected_with_its_place(path: Path) -> None:
    run = run_mirc("recipe", "check", f"bad/{path.name}", cwd=FIXTURES)
    assert run.status == 1
    assert run.out == f"bad/{path.name}: rejected\n"
    assert run.err.startswith(f"bad/{path.name}:")
    assert ": error: " in run.err.splitlines()[0]  # errors come before warnings
    check_snapshot(f"cli/recipe-{path.stem}.txt", run.err)


def test_every_file_and_every_problem_is_reported() -> None:
    run = run_mirc("recipe", "check", "bad/arguments.mecha", "bad/merge-space.mecha", cwd=FIXTURES)
    assert run.status == 1
    assert run.err.count(": error: ") == 3
    assert "arguments.mecha:4:7: error" in run.err and "merge-space.mecha:5:27: error" in run.err


def test_json_output() -> None:
    good = str(SPEC_RECIPES[0])
    run = run_mirc("recipe", "check", good, str(FIXTURES / "bad" / "arguments.mecha"), "--json")
    assert run.status == 1
    summary = json.loads(run.out)
    assert [entry["ok"] for entry in summary] == [True, False]
    assert summary[1]["errors"] == 2 and summary[1]["warnings"] == 1
    diagnostics = json.loads(run.err)
    assert {d["code"] for d in diagnostics} == {"recipe-arguments", "recipe-unused"}
    assert (diagnostics[0]["line"], diagnostics[0]["col"], diagnostics[0]["severity"]) == (
        4,
        7,
        "error",
    )


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    big = tmp_path / "big.mecha"
    big.write_bytes(b"# " + b"x" * (1 << 20))
    run = run_mirc("recipe", "check", str(tmp_path / "missing.mecha"), str(big), str(tmp_path))
    assert run.status == 1
    lines = run.err.splitlines()
    missing = tmp_path / "missing.mecha"
    assert lines[0] == f"{missing}: error: cannot read the recipe: No such file or directory"
    assert f"{big}: error: recipe is larger than 1048576 bytes (1 MiB)" in lines
    assert any("Is a directory" in line for line in lines)


def test_fmt_prints_the_formatted_recipe() -> None:
    run = run_mirc("recipe", "fmt", str(FIXTURES / "pairs" / "seed-dialect.given.mecha"))
    assert run.status == 0
    assert run.out == (FIXTURES / "pairs" / "seed-dialect.mecha").read_text()


def test_fmt_check_names_the_files_that_would_change(tmp_path: Path) -> None:
    canonical = FIXTURES / "identity" / "commented.mecha"
    given = FIXTURES / "pairs" / "layout.given.mecha"
    run = run_mirc("recipe", "fmt", "--check", str(canonical), str(given))
    assert run.status == 1
    assert run.out == f"would reformat {given}\n"
    assert run_mirc("recipe", "fmt", "--check", str(canonical)).status == 0


def test_fmt_write_rewrites_changed_files_only(tmp_path: Path) -> None:
    changed = tmp_path / "layout.mecha"
    shutil.copy(FIXTURES / "pairs" / "layout.given.mecha", changed)
    same = tmp_path / "same.mecha"
    shutil.copy(FIXTURES / "identity" / "commented.mecha", same)
    os.utime(same, (1_000_000, 1_000_000))
    run = run_mirc("recipe", "fmt", "--write", str(changed), str(same))
    assert (run.status, run.out) == (0, f"reformatted {changed}\n")
    assert changed.read_bytes() == (FIXTURES / "pairs" / "layout.mecha").read_bytes()
    assert same.stat().st_mtime == 1_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout.mecha", "same.mecha"]


def test_fmt_write_leaves_rejected_files_alone(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mecha"
    shutil.copy(FIXTURES / "bad" / "bad-escape.mecha", bad)
    before = bad.read_bytes()
    good = tmp_path / "good.mecha"
    shutil.copy(FIXTURES / "pairs" / "numbers.given.mecha", good)
    run = run_mirc("recipe", "fmt", "--write", str(bad), str(good))
    assert run.status == 1
    assert bad.read_bytes() == before
    assert good.read_bytes() == (FIXTURES / "pairs" / "numbers.mecha").read_bytes()
    assert run.err.startswith(f"{bad}:2:10: error: unknown escape")


def test_fmt_options_exclude_each_other() -> None:
    assert run_mirc("recipe", "fmt", "--check", "--write", "x.mecha").status == 2
    assert run_mirc("recipe").status == 2
    assert run_mirc("recipe", "check").status == 2


def test_checking_a_recipe_imports_neither_sd_mecha_nor_torch() -> None:
    probe = (
        "import sys; from compiler.cli import main; "
        f"status = main(['recipe', 'check', {str(SPEC_RECIPES[0])!r}]); "
        "assert status == 0, status; "
        "assert 'sd_mecha' not in sys.modules and 'torch' not in sys.modules, 'imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
