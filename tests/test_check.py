"""``mirc check``: a valid registry passes; one small bad spec per failure mode is rejected with
its whole CLI output snapshotted, and nothing is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from compiler.load import migrate
from compiler.registry import check_registry
from compiler.yamlfile import load_yaml
from tests.conftest import check_snapshot, run_mirc

TOY = """\
spec_version: 1
kind: series
id: mir:info.unet.toy
name: Toy UNet
variants:
  base:
    repo: org/toy
    backends:
      - package: diffusers
        class: StableDiffusionPipeline
        scheduler: mir:ops.scheduler.euler:discrete
    components:
      vae: mir:info.vae.toy-vae
  tiny:
    components:
      vae: mir:info.vae.toy-vae:base
"""
VAE = """\
spec_version: 1
kind: series
id: mir:info.vae.toy-vae
variants:
  base:
    parameters: 83653863
"""
EULER = """\
spec_version: 1
kind: ops
id: mir:ops.scheduler.euler
variants:
  discrete:
    backends:
      - package: diffusers
        class: EulerDiscreteScheduler
"""
TARGET = """\
spec_version: 1
kind: target
id: toy-gpu
name: Toy GPU
device: cuda
memory_gib: 16
dtypes: [fp32, fp16]
attention: [sdpa]
devices_per_node: 1
nodes: 1
"""
GOOD = {
    "models/unet/toy.yaml": TOY,
    "models/vae/toy-vae.yaml": VAE,
    "ops/scheduler/euler.yaml": EULER,
    "targets/toy-gpu.yaml": TARGET,
}


def make_registry(root: Path, files: dict[str, str | bytes]) -> Path:
    spec = root / "spec"
    for rel, text in files.items():
        path = spec / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return spec


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_good_registry_links(tmp_path: Path) -> None:
    result = check_registry(make_registry(tmp_path, GOOD))
    assert result.ok, result.diagnostics
    linked = result.linked
    assert linked is not None
    toy = linked.variants[
        next(k for k in linked.variants if k.series == "toy" and k.compat == "base")
    ]
    assert linked.resolve(toy, "components.vae").id.series == "toy-vae"
    assert result.summary()["series"] == 2 and result.summary()["ops"] == 1
    assert result.summary()["targets"] == 1 and result.summary()["variants"] == 4


def test_cli_json_summary(tmp_path: Path) -> None:
    run = run_mirc("check", str(make_registry(tmp_path, GOOD)), "--json")
    assert run.status == 0
    assert json.loads(run.out)["summary"]["variants"] == 4


BAD = {
    "duplicate-key": {"models/vae/toy-vae.yaml": VAE + "    parameters: 2\n"},
    "anchor": {"models/vae/toy-vae.yaml": VAE.replace("83653863", "&n 83653863")},
    "wrong-type": {
        "models/vae/toy-vae.yaml": VAE.replace("parameters: 83653863", "parameters: many")
    },
    "unknown-field": {"models/vae/toy-vae.yaml": VAE + "    colour: blue\n"},
    "path-id-mismatch": {"models/vae/toy-vae.yaml": VAE.replace("toy-vae", "other-vae")},
    "dangling-reference": {"models/unet/toy.yaml": TOY.replace("toy-vae:base", "toy-vea:base")},
    "missing-variant": {"models/unet/toy.yaml": TOY.replace("toy-vae:base", "toy-vae:xl")},
    "unknown-architecture": {
        "models/vea/toy-vae.yaml": VAE.replace("info.vae", "info.vea"),
    },
    "bad-mir-syntax": {
        "models/unet/toy.yaml": TOY.replace("mir:info.vae.toy-vae\n", "mir:info.vae.Toy\n")
    },
    "device-name": {
        "models/vae/con.yaml": VAE.replace("toy-vae", "con"),
    },
    "wrong-kind": {"targets/toy-gpu.yaml": TARGET.replace("kind: target", "kind: series")},
    "target-missing-field": {"targets/toy-gpu.yaml": TARGET.replace("memory_gib: 16\n", "")},
    "leading-zero": {"models/vae/toy-vae.yaml": VAE.replace("83653863", "083653863")},
    "tag": {"models/vae/toy-vae.yaml": VAE.replace("83653863", "!!int 83653863")},
    "cycle": {
        "models/vae/toy-vae.yaml": VAE + "    components:\n      unet: mir:info.unet.toy\n",
    },
    "not-utf8": {"models/vae/toy-vae.yaml": VAE.encode() + b"    name: \xff\n"},
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_rejected_with_snapshot(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: dict[str, str | bytes] = {**GOOD, **BAD[case]}
    if case in ("unknown-architecture", "device-name"):
        del files["models/vae/toy-vae.yaml"]
    spec = make_registry(tmp_path, files)
    before = tree_digest(tmp_path)
    monkeypatch.chdir(tmp_path)
    run = run_mirc("check", "spec")
    assert run.status == 1
    assert tree_digest(tmp_path) == before
    first = run.err.splitlines()[0]
    assert first.startswith("spec/") and ": error: " in first
    check_snapshot(f"check/{case}.txt", run.out + run.err)
    assert spec.is_dir()


def test_all_files_are_checked_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files: dict[str, str | bytes] = {
        **GOOD,
        "models/vae/toy-vae.yaml": VAE + "    colour: blue\n",
        "targets/toy-gpu.yaml": TARGET.replace("memory_gib: 16\n", ""),
    }
    monkeypatch.chdir(tmp_path)
    make_registry(tmp_path, files)
    run = run_mirc("check", "spec", "--json")
    assert run.status == 1
    diagnostics = json.loads(run.err)
    assert {d["file"] for d in diagnostics} >= {
        "spec/models/vae/toy-vae.yaml",
        "spec/targets/toy-gpu.yaml",
    }


def test_deep_check_finds_missing_classes(tmp_path: Path) -> None:
    spec = make_registry(
        tmp_path,
        {
            **GOOD,
            "models/unet/toy.yaml": TOY.replace(
                "class: StableDiffusionPipeline", "class: NoSuchPipeline"
            ),
        },
    )
    assert check_registry(spec).ok
    result = check_registry(spec, deep=True)
    assert [d.code for d in result.diagnostics] == ["spec-deep-class"]
    assert "NoSuchPipeline" in result.diagnostics[0].message


def test_version_0_specs_are_migrated() -> None:
    old = (
        VAE.replace("spec_version: 1", "spec_version: 0")
        + "    layer_256:\n      - "
        + "a" * 64
        + "\n"
    )
    document = migrate(load_yaml(old.encode(), "old.yaml"))
    assert document.value["spec_version"] == 1
    assert document.value["variants"]["base"]["hashes"] == {"layer_256": ["a" * 64]}
    assert document.span(("variants", "base", "hashes", "layer_256", 0)).line == 8


def test_migrated_spec_passes_check(tmp_path: Path) -> None:
    old = (
        VAE.replace("spec_version: 1", "spec_version: 0")
        + "    file_256:\n      - "
        + "b" * 64
        + "\n"
    )
    spec = make_registry(tmp_path, {**GOOD, "models/vae/toy-vae.yaml": old})
    result = check_registry(spec)
    assert result.ok, result.diagnostics


def test_training_descriptor_expands_to_fields(tmp_path: Path) -> None:
    training = "    training:\n      descriptor: 8xb4-amp-coslr-10e\n      learning_rate: 0.0001\n"
    spec = make_registry(tmp_path, {**GOOD, "models/vae/toy-vae.yaml": VAE + training})
    result = check_registry(spec)
    assert result.ok, result.diagnostics
    assert result.linked is not None
    [variant] = [v for k, v in result.linked.variants.items() if k.series == "toy-vae"]
    assert variant.training is not None
    expanded = variant.training
    assert (expanded.gpus, expanded.batch_size, expanded.epochs) == (8, 32, 10)
    assert expanded.lr_schedule == "cosine" and expanded.mixed_precision is True


def test_written_training_fields_win_over_the_descriptor(tmp_path: Path) -> None:
    training = "    training:\n      descriptor: 8xb4-coslr-10e\n      batch_size: 64\n"
    spec = make_registry(tmp_path, {**GOOD, "models/vae/toy-vae.yaml": VAE + training})
    result = check_registry(spec)
    assert result.linked is not None
    [variant] = [v for k, v in result.linked.variants.items() if k.series == "toy-vae"]
    assert variant.training is not None
    assert variant.training.batch_size == 64 and variant.training.mixed_precision is False


def test_bad_descriptor_is_positioned_in_the_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training = "    training:\n      descriptor: 8xbb4-coslr\n"
    make_registry(tmp_path, {**GOOD, "models/vae/toy-vae.yaml": VAE + training})
    monkeypatch.chdir(tmp_path)
    run = run_mirc("check", "spec")
    assert run.status == 1
    check_snapshot("check/bad-descriptor.txt", run.out + run.err)
    assert run.err.startswith("spec/models/vae/toy-vae.yaml:8:")


def test_deep_check_knows_pipeline_methods(tmp_path: Path) -> None:
    method = TOY.replace("class: StableDiffusionPipeline", "class: load_lora_weights")
    spec = make_registry(tmp_path, {**GOOD, "models/unet/toy.yaml": method})
    assert check_registry(spec, deep=True).ok
    wrong = TOY.replace("class: StableDiffusionPipeline", "class: load_lora_weight")
    spec = make_registry(tmp_path, {**GOOD, "models/unet/toy.yaml": wrong})
    [problem] = check_registry(spec, deep=True).diagnostics
    assert "no function or pipeline method 'load_lora_weight'" in problem.message


RECIPE = """version 0.1.0
model "mir:info.unet.toy" model_config="sd1-ldm" merge_space="weight"
model "mir:info.unet.toy:tiny" model_config="sd1-ldm" merge_space="weight"
merge "weighted_sum" &0 &1 alpha=0.5
"""


def test_recipe_inputs_must_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_registry(tmp_path / "a", {**GOOD, "recipes/mix.mecha": RECIPE})
    assert check_registry(good).ok
    bad = RECIPE.replace("mir:info.unet.toy:tiny", "mir:info.unet.toy:small")
    make_registry(tmp_path / "b", {**GOOD, "recipes/mix.mecha": bad})
    monkeypatch.chdir(tmp_path / "b")
    run = run_mirc("check", "spec")
    assert run.status == 1
    assert run.err.startswith(
        "spec/recipes/mix.mecha:3:7: error: "
        "no model in the registry has the id mir:info.unet.toy:small"
    )


def test_recipe_check_resolves_mir_ids_through_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_registry(tmp_path, GOOD)
    (tmp_path / "mix.mecha").write_text(RECIPE.replace(":tiny", ":huge"))
    monkeypatch.chdir(tmp_path)
    run = run_mirc("recipe", "check", "mix.mecha")
    assert (
        run.status == 1 and "no model in the registry has the id mir:info.unet.toy:huge" in run.err
    )
    (tmp_path / "mix.mecha").write_text(RECIPE)
    assert run_mirc("recipe", "check", "mix.mecha").status == 0
