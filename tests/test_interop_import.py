"""``mirc import-mir``: the whole upstream database imports into valid specs, by the documented
rules, idempotently and deterministically; bad input is rejected and writes nothing; existing
files keep what import does not own."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.interop import files
from compiler.interop.importer import ImportResult, import_mir
from compiler.interop.references import variant_name
from compiler.interop.table import rules, table_markdown
from compiler.registry import check_registry
from compiler.yamlfile import load_yaml_file
from tests.conftest import ROOT, check_snapshot, run_mirc
from tests.interop_support import SMALL, UPSTREAM, tree_bytes, tree_digest, upstream, write_json

# How often each rule applies to the July 2025 upstream database. Pinned: a change here means
# the import (or the fixture) changed, and NORMALISATION.md must be regenerated.
RULE_COUNTS = {
    "arch-alias": 106,
    "series-name": 6,
    "compat-name": 49,
    "compat-star": 252,
    "star-and-base": 3,
    "pkg-index": 389,
    "pkg-hashes": 1,
    "package-args": 80,
    "package-space": 1,
    "dotted-class": 3,
    "extra-package": 3,
    "gen-kwargs": 1,
    "settings-only": 8,
    "dotted-reference": 12,
    "scheduler-args": 5,
    "scheduler-no-args": 1,
    "reference-sole-variant": 6,
    "reference-unresolved": 1,
    "file-hash-settings": 8,
}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportResult]:
    spec = tmp_path_factory.mktemp("import") / "spec"
    return spec, import_mir(UPSTREAM, spec)


def test_every_upstream_entry_becomes_a_valid_spec(imported: tuple[Path, ImportResult]) -> None:
    spec, result = imported
    database = upstream()
    assert result.entries == len(database) == 320
    assert len(result.new) == 320 and not result.updated and not result.unchanged
    found: set[tuple[str, str]] = set()
    for rel in result.new:
        document = load_yaml_file(spec / rel).value
        for variant in document["variants"].values():
            found.add((variant["upstream"]["key"], variant["upstream"]["compat"]))
    merged = {(k, "base") for k, v in database.items() if "*" in v and "base" in v}
    assert len(merged) == 3
    assert found | merged == {(k, c) for k, v in database.items() for c in v}
    check = check_registry(spec)
    assert check.ok and not check.diagnostics, check.diagnostics[:3]
    summary = check.summary()
    assert (summary["series"], summary["ops"], summary["variants"]) == (273, 47, 394)


def test_rule_counts_are_pinned_and_every_rule_applies(
    imported: tuple[Path, ImportResult],
) -> None:
    _, result = imported
    assert result.rule_counts() == RULE_COUNTS
    assert list(RULE_COUNTS) == list(rules())
    [warning] = result.diagnostics
    assert warning.code == "import-unresolved" and "ops.scheduler.flow-match" in warning.message
    assert warning.span is not None and warning.span.line == 4273


def test_report_lists_each_change_with_its_upstream_key(
    imported: tuple[Path, ImportResult],
) -> None:
    _, result = imported
    report = result.to_json()
    changes = report["changes"]
    assert isinstance(changes, list) and len(changes) == sum(RULE_COUNTS.values())
    by_rule = {c["rule"]: c for c in reversed(changes)}
    assert by_rule["package-space"]["key"] == "info.gan.kokoro"
    assert by_rule["package-space"]["compat"] == "82m"
    assert by_rule["arch-alias"] == {
        "rule": "arch-alias",
        "key": "info.ststm.granite-speech-3",
        "compat": None,
        "path": ["info.ststm.granite-speech-3"],
        "before": "ststm",
        "after": "stst",
    }


def test_references_resolve_within_the_import(imported: tuple[Path, ImportResult]) -> None:
    spec, _ = imported
    sdxl = load_yaml_file(spec / "models/unet/stable-diffusion-xl.yaml").value
    aesthetic = sdxl["variants"]["playground-2-5-aesthetic"]["backends"][0]
    assert aesthetic == {
        "generation": {"num_inference_steps": 50, "guidance_scale": 3},
        "precision": "mir:ops.precision.float:f16",
    }
    lcm = load_yaml_file(spec / "models/lora/lcm.yaml").value["variants"]
    assert lcm["stable-diffusion-xl"]["backends"][0]["scheduler"] == (
        "mir:ops.scheduler.lcm:scheduler"
    )
    assert lcm["stable-diffusion-xl"]["backends"][0]["scheduler_args"] == {
        "timestep_spacing": "trailing"
    }


def test_reimport_changes_nothing(imported: tuple[Path, ImportResult]) -> None:
    spec, _ = imported
    before = tree_bytes(spec)
    again = import_mir(UPSTREAM, spec)
    assert len(again.unchanged) == 320 and not again.new and not again.updated
    assert tree_bytes(spec) == before


def test_committed_registry_is_the_import_of_the_fixture(tmp_path: Path) -> None:
    """spec/ holds the imported database: importing the fixture again changes nothing."""
    spec = tmp_path / "spec"
    shutil.copytree(ROOT / "spec", spec)
    result = import_mir(UPSTREAM, spec)
    assert not result.new and not result.updated, (result.new[:3], result.updated[:3])


def _import_in_subprocess(source: Path, spec: Path, seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "compiler", "import-mir", str(source), "--spec", str(spec)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_import_is_deterministic_across_hash_seeds_and_key_order(tmp_path: Path) -> None:
    database = upstream()
    keys = list(database)
    random.Random(7).shuffle(keys)
    shuffled = write_json(tmp_path / "shuffled.json", {k: database[k] for k in keys})
    _import_in_subprocess(UPSTREAM, tmp_path / "one", "1")
    _import_in_subprocess(shuffled, tmp_path / "two", "2")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_normalisation_page_is_generated_from_the_table(
    imported: tuple[Path, ImportResult],
) -> None:
    _, result = imported
    text = table_markdown(result.rule_counts())
    page = ROOT / "compiler" / "interop" / "NORMALISATION.md"
    if os.environ.get("MIRC_UPDATE_SNAPSHOTS") == "1":
        page.write_text(text, encoding="utf-8")
    assert page.read_text(encoding="utf-8") == text
    for name in rules():
        assert f"| `{name}` |" in text


# --- the small database: every quirk once, CLI output snapshotted -------------------------


def test_small_import_cli_snapshot(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 0, run.err
    check_snapshot("interop/import-small.txt", run.out + run.err)
    spec = tmp_path / "spec"
    for rel in ("models/art/talker-1-0.yaml", "models/unet/toy-xl.yaml", "models/lora/fast.yaml"):
        check_snapshot(f"interop/small/{rel.replace('/', '__')}", (spec / rel).read_text())
    assert check_registry(spec).ok


def test_small_import_json_report(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    run = run_mirc("import-mir", "mir.json", "--json", cwd=tmp_path)
    assert run.status == 0, run.err
    report = json.loads(run.out)
    assert report["files"]["new"] == [
        "models/art/talker-1-0.yaml",
        "models/lora/fast.yaml",
        "models/unet/toy-xl.yaml",
        "ops/precision/float.yaml",
        "ops/scheduler/euler.yaml",
    ]
    assert report["rules"]["star-and-base"] == 1 and report["rules"]["compat-name"] == 3
    unresolved = [c for c in report["changes"] if c["rule"] == "reference-unresolved"]
    assert unresolved == [
        {
            "rule": "reference-unresolved",
            "key": "info.lora.fast",
            "compat": "toy-xl",
            "path": ["info.lora.fast", "toy-xl", "pkg", "1", "scheduler"],
            "before": "ops.scheduler.nope",
            "after": "extra.scheduler",
        }
    ]
    [warning] = json.loads(run.err)
    assert (warning["severity"], warning["file"]) == ("warning", "mir.json")


# --- rejected input: FILE:LINE:COL, exit 1, nothing written -----------------------------

BAD_INPUT = {
    "malformed": '{\n    "info.unet.x": {\n        "*": {"repo": "a/b",}\n    }\n}\n',
    "duplicate-key": '{\n    "info.unet.x": {"*": {}},\n    "info.unet.x": {"*": {}}\n}\n',
    "not-an-object": '[\n    "info.unet.x"\n]\n',
    "nan": '{"info.unet.x": {"*": {"pkg": {"0": {"generation": {"cfg": NaN}}}}}}\n',
    "unknown-architecture": '{\n    "info.unett.x": {"*": {"repo": "a/b"}}\n}\n',
    "unknown-field": '{\n    "info.unet.x": {"*": {"repo": "a/b", "colour": "blue"}}\n}\n',
    "bad-pkg": '{\n    "info.unet.x": {"*": {"pkg": {"zero": {"diffusers": "X"}}}}\n}\n',
    "compat-collision": '{\n    "ops.precision.float": {"F16": {}, "f16": {}}\n}\n',
    "device-name": '{\n    "info.unet.con": {"*": {}}\n}\n',
    "empty-name": '{\n    "info.unet.--": {"*": {}}\n}\n',
    "path-collision": '{\n    "info.artm.x": {"*": {}},\n    "model.art.x": {"*": {}}\n}\n',
    "bad-repo": '{\n    "info.unet.x": {"*": {"repo": "not a repo"}}\n}\n',
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_rejected_and_writes_nothing(case: str, tmp_path: Path) -> None:
    (tmp_path / "mir.json").write_text(BAD_INPUT[case], encoding="utf-8")
    existing = tmp_path / "spec" / "models" / "unet" / "kept.yaml"
    existing.parent.mkdir(parents=True)
    existing.write_text("# not touched\n", encoding="utf-8")
    before = tree_digest(tmp_path / "spec")
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 1
    assert run.err.splitlines()[0].startswith("mir.json:"), run.err
    assert ": error: " in run.err.splitlines()[0]
    assert tree_digest(tmp_path / "spec") == before
    check_snapshot(f"interop/bad-{case}.txt", run.out + run.err)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    run = run_mirc("import-mir", "nowhere.json", cwd=tmp_path)
    assert run.status == 1
    assert run.err.startswith("nowhere.json: error: cannot read: No such file")
    assert not (tmp_path / "spec").exists()


# --- the merge contract ------------------------------------------------------------------

CURATED = """\
# yaml-language-server: $schema=../../schema/series.schema.json
# Curated by hand: the comment goes when import rewrites the file.
spec_version: 1
kind: series
id: mir:info.unet.toy-xl
name: Toy XL
description: A curated description.
variants:
  base:
    name: Toy XL base
    repo: curated/old-repo
    components:
      vae: mir:info.unet.toy-xl:turbo-v2
    objective: epsilon
    fingerprints:
      - format: ldm
        required:
          model.diffusion_model.input_blocks.0.0.weight: [320, 4, 3, 3]
    license: openrail
  curated-only:
    description: Not upstream.
"""
OTHER = """\
# yaml-language-server: $schema=../../schema/series.schema.json
spec_version: 1
kind: series
id: mir:info.unet.my-model
variants:
  base: {repo: me/my-model}
"""


def test_import_keeps_curated_fields_and_untouched_files(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    spec = tmp_path / "spec"
    (spec / "models" / "unet").mkdir(parents=True)
    (spec / "models/unet/toy-xl.yaml").write_text(CURATED, encoding="utf-8")
    (spec / "models/unet/my-model.yaml").write_text(OTHER, encoding="utf-8")
    result = import_mir(tmp_path / "mir.json", spec)
    assert result.updated == ("models/unet/toy-xl.yaml",)
    assert (spec / "models/unet/my-model.yaml").read_text(encoding="utf-8") == OTHER
    merged = load_yaml_file(spec / "models/unet/toy-xl.yaml").value
    base = merged["variants"]["base"]
    assert (merged["name"], merged["description"]) == ("Toy XL", "A curated description.")
    assert base["repo"] == "org/toy-xl"  # upstream owns repo
    assert base["backends"][0]["generation"] == {"width": 1024}
    assert base["fingerprints"][0]["format"] == "ldm" and base["license"] == "openrail"
    assert base["components"] == {"vae": "mir:info.unet.toy-xl:turbo-v2"}
    assert list(merged["variants"]) == ["base", "curated-only", "turbo-v2"]
    assert merged["variants"]["curated-only"] == {"description": "Not upstream."}
    check_snapshot("interop/merged-toy-xl.yaml", (spec / "models/unet/toy-xl.yaml").read_text())
    before = tree_bytes(spec)
    again = import_mir(tmp_path / "mir.json", spec)
    assert again.updated == () and tree_bytes(spec) == before


def test_a_file_of_another_kind_is_not_merged(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    spec = tmp_path / "spec"
    (spec / "models" / "unet").mkdir(parents=True)
    (spec / "models/unet/toy-xl.yaml").write_text(OTHER, encoding="utf-8")
    before = tree_digest(spec)
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 1 and "not merged" in run.err
    assert tree_digest(spec) == before


def test_links_are_not_followed(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spec = tmp_path / "spec"
    (spec / "models").mkdir(parents=True)
    (spec / "models" / "unet").symlink_to(elsewhere, target_is_directory=True)
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 1 and "symbolic link" in run.err
    assert list(elsewhere.iterdir()) == [] and not (spec / "ops").exists()


def test_variant_names_follow_the_table() -> None:
    assert [variant_name(c) for c in ("*", "F8_E5M2", "shuttle-3.1-aesthetic", "7B-768")] == [
        "base",
        "f8-e5m2",
        "shuttle-3-1-aesthetic",
        "7b-768",
    ]


def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every temporary file is written before the first rename: running out of space on the
    third file leaves the folder exactly as it was, with no temporary files or new folders."""
    write_json(tmp_path / "mir.json", SMALL)
    spec = tmp_path / "spec"
    (spec / "models" / "unet").mkdir(parents=True)
    (spec / "models/unet/toy-xl.yaml").write_text(CURATED, encoding="utf-8")
    before = tree_bytes(spec)
    written = files._temporary
    calls = iter(range(100))

    def full_disk(path: Path, data: bytes, mode: int) -> str:
        if next(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return written(path, data, mode)

    monkeypatch.setattr(files, "_temporary", full_disk)
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 1 and "No space left on device" in run.err
    assert tree_bytes(spec) == before
    assert sorted(p.relative_to(spec).as_posix() for p in spec.rglob("*")) == [
        "models",
        "models/unet",
        "models/unet/toy-xl.yaml",
    ]


def test_a_file_where_a_folder_belongs_is_a_rejection(tmp_path: Path) -> None:
    write_json(tmp_path / "mir.json", SMALL)
    spec = tmp_path / "spec"
    (spec / "models").mkdir(parents=True)
    (spec / "models" / "unet").write_text("not a folder\n", encoding="utf-8")
    before = tree_bytes(spec)
    run = run_mirc("import-mir", "mir.json", cwd=tmp_path)
    assert run.status == 1
    assert run.err.startswith("spec/models/unet: error: not a folder (on the way to spec/models/")
    assert tree_bytes(spec) == before


def test_hand_written_backends_stay_first_and_win() -> None:
    from compiler.interop.importer import is_curated, merge_backends

    curated = [
        {"package": "diffusers", "class": "FluxPipeline", "scheduler": "mir:ops.scheduler.x"}
    ]
    upstream = [
        {
            "package": "diffusers",
            "class": "FluxPipeline",
            "scheduler": "mir:ops.scheduler.y",
            "precision": "p",
        },
        {"package": "diffusers", "class": "FluxInpaintPipeline"},
    ]
    merged = merge_backends(curated, upstream)
    assert merged[0] == {
        "package": "diffusers",
        "class": "FluxPipeline",
        "scheduler": "mir:ops.scheduler.x",
        "precision": "p",
    }
    assert merged[1]["class"] == "FluxInpaintPipeline"
    assert is_curated({"repo": "a/b", "fingerprints": []}) and not is_curated(
        {"repo": "a/b", "backends": []}
    )
