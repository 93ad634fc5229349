"""Injection safety of the whole build: spec strings built to create a marker file if they ever
ran come out inert in EVERY file ``mirc build`` writes (RELIABILITY rule 6).

The strings carry quotes, newlines, a lone carriage return, triple quotes, braces, backslashes
and Unicode line separators; they go into every free-text field a spec has (names,
descriptions, generation defaults, backend arguments, LoRA target modules, layer globs).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.build import build
from tests.test_loader import MARKER, payloads
from tests.training_support import TINY_SD, make_registry


def nasty_series(values: list[str]) -> str:
    quoted = [json.dumps(v) for v in values]
    generation = "".join(f"          p{i}: {q}\n" for i, q in enumerate(quoted))
    args = "".join(f"          a{i}: {q}\n" for i, q in enumerate(quoted[:4]))
    text = TINY_SD.replace("name: Tiny SD", f"name: {quoted[0]}\ndescription: {quoted[1]}")
    text = text.replace(
        "        class: StableDiffusionPipeline\n",
        "        class: StableDiffusionPipeline\n"
        f"        generation:\n{generation}        args:\n{args}",
    )
    text = text.replace(
        "    repo: org/tiny-sd\n",
        f"    name: {quoted[2]}\n    description: {quoted[3]}\n    repo: org/tiny-sd\n",
    )
    text = text.replace(
        "target_modules: [to_q, to_k, to_v, to_out.0]", f"target_modules: [to_q, {quoted[4]}]"
    )
    return text.replace('- match: "up_blocks.*"', f"- match: {quoted[5]}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("nasty")
    values = payloads()
    spec = make_registry(root, {"models/unet/tiny-sd.yaml": nasty_series(values)})
    result = build(spec, root / "generated")
    assert result.ok, [d.message for d in result.diagnostics]
    return root, values


def test_every_generated_python_file_parses_and_imports_inertly(
    built: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, values = built
    monkeypatch.chdir(root)
    out = root / "generated"
    python = sorted(out.rglob("*.py"))
    assert any("loaders" in p.parts for p in python) and any("training" in p.parts for p in python)
    for path in python:
        ast.parse(path.read_text(encoding="utf-8"))
    monkeypatch.syspath_prepend(str(root))
    loader = importlib.import_module("generated.loaders.unet.tiny_sd")
    described = loader.describe()
    assert [described["generation"][f"p{i}"] for i in range(len(values))] == values
    assert not (root / MARKER).exists()


def test_training_scripts_and_launch_files_run_inertly(built: tuple[Path, list[str]]) -> None:
    root, _ = built
    scripts = _training_scripts(root)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for script in scripts[:2]:  # executing the module level (with its SPEC) is the point
        done = subprocess.run(
            [sys.executable, str(script), "--help"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    for launch in (root / "generated" / "training").rglob("*.sh"):
        assert subprocess.run(["sh", "-n", str(launch)], check=False).returncode == 0
    assert not (root / MARKER).exists()


def test_parameter_files_hold_the_strings_as_data(built: tuple[Path, list[str]]) -> None:
    root, values = built
    documents = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((root / "generated" / "params").rglob("*.json"))
    ]
    assert documents and all(d["_generated"]["by"] == "mirc build" for d in documents)
    scripts = _training_scripts(root)
    spec = ast.literal_eval(_assigned(scripts[0], "SPEC"))
    assert values[4] in spec["variants"]["base"]["lora"]["target_modules"]
    assert not (root / MARKER).exists()


def _training_scripts(root: Path) -> list[Path]:
    """The generated training scripts (each with its SPEC), not the runtime they share."""
    training = root / "generated" / "training"
    scripts = sorted(p for p in training.rglob("*.py") if p != training / "runtime.py")
    assert scripts
    return scripts


def _assigned(path: Path, name: str) -> str:
    """The source of the value assigned to ``name`` at the top of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.get_source_segment(path.read_text(encoding="utf-8"), node.value) or ""
    raise AssertionError(f"{path}: no {name} = …")
