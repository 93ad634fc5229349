"""``mirc build``: deterministic, atomic (template error, SIGKILL), incremental, ``--check``."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler import load
from compiler.build import MANIFEST, build
from compiler.write import read_tree
from tests.conftest import ROOT, run_mirc
from tests.test_check import GOOD, TARGET, make_registry

REAL_SPEC = ROOT / "spec"


def toy_registry(root: Path) -> Path:
    files: dict[str, str | bytes] = {
        **GOOD,
        "targets/big.yaml": TARGET.replace("toy-gpu", "big").replace(
            "memory_gib: 16", "memory_gib: 80"
        ),
    }
    return make_registry(root, files)


def outputs(out: Path) -> dict[str, bytes]:
    tree = read_tree(out)
    tree.pop(MANIFEST, None)
    return tree


def test_build_writes_params_with_reasons_and_headers(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    result = build(spec, tmp_path / "generated")
    assert result.ok, result.diagnostics
    document = json.loads((tmp_path / "generated/params/unet/toy.base.json").read_text())
    assert document["_generated"]["from"] == "spec/models/unet/toy.yaml"
    offload = document["targets"]["big"]["inference"]["offload"]
    assert set(offload) == {"value", "reason"} and offload["reason"]


def test_two_builds_are_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / f"out{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "compiler", "build", "--spec", str(spec), "--out", str(out)],
            check=True,
            env=env,
            capture_output=True,
        )
        trees.append(outputs(out))
    assert trees[0] == trees[1] and trees[0]


def test_shuffled_input_order_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = toy_registry(tmp_path)
    build(spec, tmp_path / "a")
    original = load.discover

    def shuffled(spec_dir: Path) -> list[tuple[Path, str]]:
        found = original(spec_dir)
        random.Random(7).shuffle(found)
        return found

    monkeypatch.setattr(load, "discover", shuffled)
    build(spec, tmp_path / "b")
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")


def test_noop_rebuild_rewrites_nothing(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    build(spec, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = build(spec, out)
    assert again.up_to_date and again.rendered == 0 and not again.changed
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps


def test_changing_one_spec_renders_only_its_files(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    first = build(spec, out)
    toy = spec / "models/unet/toy.yaml"
    tiny = "  tiny:\n    backends:\n      - generation: {height: 768}\n"
    toy.write_text(toy.read_text().replace("  tiny:\n", tiny))
    second = build(spec, out)
    # three parameter files, the toy series' loader, the loaders' shared runtime, mir.json
    assert second.ok and (first.rendered, second.rendered) == (6, 3)
    assert second.changed == ["loaders/unet/toy.py", "mir.json", "params/unet/toy.tiny.json"]


def test_template_error_leaves_generated_unchanged(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    build(spec, out)
    before = read_tree(out)
    broken = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", broken)
    (broken / "params.json.j2").write_text("{{ document | no_such_filter }}\n")
    vae = spec / "models/vae/toy-vae.yaml"
    vae.write_text(vae.read_text().replace("83653863", "5"))
    result = build(spec, out, templates=broken)
    assert not result.ok and result.diagnostics[0].code == "build-render"
    assert read_tree(out) == before


@pytest.mark.parametrize(
    ("line", "finding"),
    [
        ("\n\nX = SERIES == None\n", "E711"),
        ("X=1\n", "would be reformatted"),
        ("\ndef (:\n", "invalid-syntax"),
        ("\nnonlocal SERIES\n", "not allowed at module level"),
    ],
    ids=["ruff-check", "ruff-format", "syntax", "compile-time"],
)
def test_generated_python_that_fails_ruff_is_not_written(
    tmp_path: Path, line: str, finding: str
) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    build(spec, out)
    before = read_tree(out)
    broken = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", broken)
    (broken / "loader.py.j2").write_text((broken / "loader.py.j2").read_text() + line)
    result = build(spec, out, templates=broken)
    assert not result.ok and result.diagnostics[0].code == "build-lint"
    message = result.diagnostics[0].message
    assert finding in message and "generated/loaders/unet/toy.py" in message
    assert read_tree(out) == before
    assert not list(tmp_path.glob(".generated.*"))


def test_rejected_registry_writes_nothing(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    build(spec, out)
    before = read_tree(out)
    (spec / "models/vae/toy-vae.yaml").write_text("spec_version: 1\nkind: series\nid: [\n")
    run = run_mirc("build", "--spec", str(spec), "--out", str(out))
    assert run.status == 1 and "error:" in run.err
    assert read_tree(out) == before


def test_sigkill_mid_build_leaves_old_or_new_tree(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    shutil.copytree(REAL_SPEC, spec)
    out = tmp_path / "generated"
    build(spec, out)
    old = read_tree(out)
    for path in sorted((spec / "models").rglob("*.yaml"))[:40]:  # change many outputs
        path.write_text(path.read_text().replace("\nvariants:", "\nname: Changed\nvariants:", 1))
    command = [sys.executable, "-m", "compiler", "build", "--spec", str(spec), "--out", str(out)]
    seen_old = False
    for delay in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        tree = read_tree(out)
        if tree == old:
            seen_old = True
            continue
        assert tree.keys() >= old.keys() - {MANIFEST}
        assert build(spec, out, check=True).changed == [], "a killed build left a mixed tree"
        break
    assert seen_old, "no kill landed before the swap; the test proved nothing"
    assert build(spec, out).ok
    assert not list(tmp_path.glob(".generated.*")), "leftovers of killed builds are cleared"


def test_check_reports_stale_output_with_the_fix(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    out = tmp_path / "generated"
    build(spec, out)
    assert run_mirc("build", "--check", "--spec", str(spec), "--out", str(out)).status == 0
    target = out / "params/unet/toy.base.json"
    target.write_text(target.read_text().replace('"targets"', '"TARGETS"'))
    run = run_mirc("build", "--check", "--spec", str(spec), "--out", str(out))
    assert run.status == 1
    assert "generated/params/unet/toy.base.json" in run.out
    assert "run `mirc build` to update" in run.err
    assert "TARGETS" in target.read_text()  # --check wrote nothing


def test_committed_generated_is_up_to_date() -> None:
    result = build(REAL_SPEC, ROOT / "generated", check=True)
    assert result.ok and result.changed == [], result.diff[:2000]


def test_build_writes_the_upstream_database_as_export_mir_does(tmp_path: Path) -> None:
    spec = toy_registry(tmp_path)
    build(spec, tmp_path / "generated")
    run = run_mirc("export-mir", "--spec", str(spec), "-o", str(tmp_path / "exported.json"))
    assert run.status == 0
    built = (tmp_path / "generated" / "mir.json").read_bytes()
    assert built == (tmp_path / "exported.json").read_bytes()
    assert "info.unet.toy" in json.loads(built)
