"""The spec format pieces import needs: settings-only backends, scheduler arguments, and the
loader's plain-scalar resolution that the spec writer relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.registry import check_registry
from compiler.yamlfile import resolve_plain
from tests.test_check import GOOD, make_registry

BACKENDS = """\
spec_version: 1
kind: series
id: mir:info.unet.toy
variants:
  base:
    backends:
      - package: diffusers
        class: StableDiffusionPipeline
  tiny:
    backends:
      - generation: {num_inference_steps: 4}
        scheduler: mir:ops.scheduler.euler:discrete
        scheduler_args: {timestep_spacing: trailing}
"""


def test_settings_only_backend_and_scheduler_args_pass_check(tmp_path: Path) -> None:
    spec = make_registry(tmp_path, {**GOOD, "models/unet/toy.yaml": BACKENDS})
    result = check_registry(spec)
    assert result.ok, result.diagnostics
    assert result.linked is not None
    tiny = next(v for v in result.linked.variants.values() if v.compat == "tiny")
    assert tiny.backends[0].package is None
    assert tiny.backends[0].scheduler_args == {"timestep_spacing": "trailing"}
    assert [r.role for r in tiny.references] == ["scheduler"]


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("class: StableDiffusionPipeline", "'package' is a dependency of 'class'"),
        ("args: {fuse: 1.0}", "'package' is a dependency of 'args'"),
        ("{}", "should be non-empty"),
    ],
)
def test_class_or_args_need_a_package(tmp_path: Path, backend: str, message: str) -> None:
    text = BACKENDS.replace("generation: {num_inference_steps: 4}", backend)
    if backend == "{}":
        text = text.split("  tiny:")[0] + "  tiny:\n    backends:\n      - {}\n"
    result = check_registry(make_registry(tmp_path, {**GOOD, "models/unet/toy.yaml": text}))
    assert not result.ok
    assert any(message in d.message for d in result.diagnostics), result.diagnostics


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("null", None),
        ("~", None),
        ("", None),
        ("True", True),
        ("false", False),
        ("no", "no"),
        ("on", "on"),
        ("2021-01-01", "2021-01-01"),
        ("-12", -12),
        ("1e5", 1e5),
        ("1.0e-05", 1e-05),
        ("1_000", "1_000"),
        ("mir:info.unet.x:base", "mir:info.unet.x:base"),
    ],
)
def test_resolve_plain(text: str, value: object) -> None:
    resolved = resolve_plain(text)
    assert resolved == value and type(resolved) is type(value)


@pytest.mark.parametrize("text", ["0123", "0x1F", "0o17", ".inf", "-.Inf", ".nan", "1e999"])
def test_resolve_plain_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        resolve_plain(text)
