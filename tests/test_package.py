"""The package as users get it: both install modes, ``python -m compiler``, the module map."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.resources import data_dir
from tests.conftest import ROOT


def test_checkout_finds_spec_and_templates_at_the_root() -> None:
    assert data_dir("spec") == ROOT / "spec"
    assert data_dir("templates") == ROOT / "templates"


def test_python_dash_m_is_the_mirc_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "parse", "info.dit.flux1-dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mir:info.dit.flux1-dev")


@pytest.mark.slow
def test_wheel_install_carries_spec_and_templates(tmp_path: Path) -> None:
    """A normal (non-editable) install finds the bundled registry from any folder."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = wheels.glob("mirc-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    probe = (
        "import compiler.resources as r, compiler.taxonomy as t;"
        "print(r.data_dir('spec')); print(r.data_dir('templates'));"
        "print(sorted(t.load_taxonomy().architectures)[:2])"
    )
    if shutil.which("cc"):  # the wheel carries the merge engine's C extension, built for it
        probe += ";import compiler.merge._kernels as k; print(k.__file__)"
    away = tmp_path / "elsewhere"
    away.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=away,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec, templates, archs, *kernels = done.stdout.splitlines()
    assert spec.startswith(str(target)) and spec.endswith("compiler/_bundled/spec")
    assert templates.endswith("compiler/_bundled/templates")
    assert archs == "['aet', 'art']"
    if kernels:
        assert kernels[0].startswith(str(target / "compiler" / "merge" / "_kernels."))
        assert "-linux_" in wheel.name or sys.platform != "linux"  # a platform wheel


def test_module_map_names_modules_that_exist() -> None:
    text = (ROOT / "compiler" / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"^\| `([\w/.]+)` \|", text, flags=re.M)
    assert len(named) >= 5
    for name in named:
        assert (ROOT / "compiler" / name).exists(), name
