"""``mirc export-mir``: export(import(upstream)) equals upstream but for the differences the
normalisation table explains, whose count is pinned; the export is a fixed point; curated fields
stay out; a registry with errors exports nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.interop.compare import counts_by_rule, differences, explain, report
from compiler.interop.exporter import export_mir
from compiler.interop.importer import ImportResult, import_mir
from tests.conftest import check_snapshot, run_mirc
from tests.interop_support import UPSTREAM, tree_bytes, upstream, write_json

# The number of differences between upstream and export(import(upstream)). Each one is explained
# by a `normalise` rule of compiler/interop/normalisation.yaml; the count may only go down.
ROUND_TRIP_DIFFERENCES = 34


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportResult, Path]:
    root = tmp_path_factory.mktemp("export")
    result = import_mir(UPSTREAM, root / "spec")
    export_mir(root / "spec", root / "mir.json")
    return root / "spec", result, root / "mir.json"


def test_round_trip_differences_are_explained_and_pinned(
    exported: tuple[Path, ImportResult, Path],
) -> None:
    _, result, output = exported
    found = list(differences(upstream(), json.loads(output.read_text(encoding="utf-8"))))
    explained = explain(found, result.changes)
    unexplained = [d.describe() for d, rules in explained if not rules]
    assert not unexplained
    assert len(found) == ROUND_TRIP_DIFFERENCES
    summary = "".join(f"{rule}: {n}\n" for rule, n in counts_by_rule(explained).items())
    check_snapshot("interop/round-trip-differences.txt", report(explained) + "\n" + summary)


def test_export_is_a_fixed_point(exported: tuple[Path, ImportResult, Path], tmp_path: Path) -> None:
    """Importing the export gives the same specs, and exporting them the same file."""
    spec, _, output = exported
    again = import_mir(output, tmp_path / "spec")
    assert not again.diagnostics[1:] and len(again.new) == 320
    assert tree_bytes(tmp_path / "spec") == tree_bytes(spec)
    export_mir(tmp_path / "spec", tmp_path / "mir.json")
    assert (tmp_path / "mir.json").read_bytes() == output.read_bytes()


def test_export_is_formatted_like_upstream(exported: tuple[Path, ImportResult, Path]) -> None:
    _, _, output = exported
    text = output.read_text(encoding="ascii")
    database = json.loads(text)
    assert text == json.dumps(database, indent=4) + "\n"
    assert list(database) == sorted(database)
    assert list(database["info.unet.stable-diffusion-xl"])[:2] == ["*", "refiner"]


CURATED = """\
spec_version: 1
kind: series
id: mir:info.unet.toy
name: Toy
description: Curated only.
links: {home: "https://example.org"}
variants:
  base:
    name: Toy base
    repo: org/toy
    backends:
      - package: diffusers
        class: ToyPipeline
        generation: {steps: 4}
        precision: mir:ops.precision.bfloat:b16
    components: {vae: "mir:info.unet.toy:tiny"}
    objective: epsilon
    parameters: 1000
    hashes:
      file_256: ["%s"]
    fingerprints:
      - format: ldm
        required: {a.weight: [4, 4]}
    training: {methods: [lora]}
    license: openrail
  tiny: {}
""" % ("c" * 64)
BFLOAT = """\
spec_version: 1
kind: ops
id: mir:ops.precision.bfloat
variants:
  b16:
    backends:
      - {package: torch, class: bfloat16, args: {variant: bfp16}}
    dtype: bfloat16
    upstream: {key: ops.precision.bfloat, compat: B16}
"""


def _registry(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / "spec" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "spec" / rel).write_text(text, encoding="utf-8")
    return root / "spec"


def test_curated_fields_are_not_exported(tmp_path: Path) -> None:
    files = {"models/unet/toy.yaml": CURATED, "ops/precision/bfloat.yaml": BFLOAT}
    spec = _registry(tmp_path, files)
    export_mir(spec, tmp_path / "out" / "mir.json")
    database: dict[str, Any] = json.loads((tmp_path / "out" / "mir.json").read_text())
    assert database == {
        "info.unet.toy": {
            "*": {
                "repo": "org/toy",
                "pkg": {
                    "0": {
                        "diffusers": "ToyPipeline",
                        "precision": "ops.precision.bfloat.b16",
                        "generation": {"steps": 4},
                    }
                },
                "file_256": ["c" * 64],
            },
            "tiny": {},
        },
        "ops.precision.bfloat": {
            "B16": {"pkg": {"0": {"torch": {"bfloat16": {"variant": "bfp16"}}}}}
        },
    }


def test_cli_export_snapshot(tmp_path: Path) -> None:
    spec = _registry(
        tmp_path, {"models/unet/toy.yaml": CURATED, "ops/precision/bfloat.yaml": BFLOAT}
    )
    run = run_mirc("export-mir", "--spec", "spec", cwd=tmp_path)
    assert run.status == 0, run.err
    assert (tmp_path / "generated" / "mir.json").is_file()
    check_snapshot("interop/export.txt", run.out + run.err)
    run = run_mirc("export-mir", "--spec", "spec", "-o", "x.json", "--json", cwd=tmp_path)
    assert json.loads(run.out) == {
        "spec_dir": "spec",
        "output": "x.json",
        "series": 2,
        "entries": 3,
        "ok": True,
    }
    assert spec.is_dir()


def test_a_registry_with_errors_exports_nothing(tmp_path: Path) -> None:
    _registry(tmp_path, {"models/unet/toy.yaml": CURATED})  # bfloat is missing: unresolved
    run = run_mirc("export-mir", "--spec", "spec", "-o", "out.json", cwd=tmp_path)
    assert run.status == 1
    assert run.err.startswith("spec/models/unet/toy.yaml:") and "unresolved" in run.err
    assert not (tmp_path / "out.json").exists()


def test_export_does_not_write_through_a_link(tmp_path: Path) -> None:
    spec = _registry(tmp_path, {"ops/precision/bfloat.yaml": BFLOAT})
    target = write_json(tmp_path / "target.json", {})
    (tmp_path / "out.json").symlink_to(target)
    run = run_mirc("export-mir", "--spec", str(spec), "-o", "out.json", cwd=tmp_path)
    assert run.status == 1 and "symbolic link" in run.err
    assert json.loads(target.read_text()) == {}
