"""The canonical spec writer: what it writes loads back as the same values (hardened loader and
YAML 1.1 alike), byte-stably, with the documented key order and quoting."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.interop.specwrite import (
    BACKEND,
    DIMENSIONS,
    DOCUMENT,
    VARIANT,
    scalar_text,
    schema_ref,
    write_spec,
)
from compiler.yamlfile import load_yaml
from tests.conftest import ROOT

TRICKY = [
    "no", "yes", "on", "off", "y", "n", "No", "null", "Null", "~", "true", "True", "false",
    "2021-01-01", "2021-01-01 10:00:00", "0123", "0o17", "0x1F", "1e5", "1E5", "1_000", "1:20",
    "+1", "-1", ".5", "5.", ".inf", ".nan", "-.Inf", "=", "<<", "a: b", "a:", "a #b", "#x",
    "- x", "-", "--- x", "... x", "[x]", "{x}", "*a", "&a", "!t", "%p", "@x", "`x", "|", "> x",
    "? x", "", " ", " x", "x ", "a\nb", "a\rb", "\t", "\x85", "\u2028", "\ufeff", "\x7f",
    "'", '"', "\\", ":", "a,b", "a, b", "mir:info.unet.x:base", "F8_E5M2", "mlx_audio ",
    "x" * 120, "über", "\U0001f600",
]  # fmt: skip

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
keys = st.one_of(text, st.sampled_from(TRICKY[:-3]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.sampled_from(TRICKY),
)
shapes = st.lists(st.integers(min_value=0, max_value=100_000), max_size=6)
values = st.recursive(
    st.one_of(scalars, shapes),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=6)


def typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so 1 == 1.0 == True cannot pass."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def write(document: dict[str, Any]) -> str:
    return write_spec(document, "../../schema/series.schema.json")


@settings(max_examples=250, deadline=None)
@given(documents)
def test_load_of_write_is_identity(document: dict[str, Any]) -> None:
    text = write(document)
    loaded = load_yaml(text.encode("utf-8"), "x.yaml").value
    assert typed(loaded if document else {}) == typed(document)
    assert typed(yaml.safe_load(text) or {}) == typed(document)  # YAML 1.1 reads the same
    assert write(loaded if document else {}) == text  # byte-stable


@settings(max_examples=200, deadline=None)
@given(st.one_of(scalars, st.sampled_from(TRICKY)))
def test_every_scalar_survives_as_a_value_and_in_a_flow_list(value: Any) -> None:
    document = {"value": value, "items": [value, 1]}
    loaded = load_yaml(write(document).encode("utf-8"), "x.yaml").value
    assert typed(loaded) == typed(document)


SPEC = {
    "variants": {
        "base": {
            "upstream": {"compat": "*", "key": "info.unet.stable-diffusion-xl"},
            "zeta": 1,
            "alpha": 2,
            "repo": "stabilityai/stable-diffusion-xl-base-1.0",
            "backends": [
                {
                    "generation": {"width": 1024, "height": 1024},
                    "class": "StableDiffusionXLPipeline",
                    "package": "diffusers",
                }
            ],
            "fingerprints": [{"required": {"a.weight": [320, 4, 3, 3]}, "format": "ldm"}],
        },
        "refiner": {"repo": "org/refiner"},
    },
    "id": "mir:info.unet.stable-diffusion-xl",
    "kind": "series",
    "spec_version": 1,
}

EXPECTED = """\
# yaml-language-server: $schema=../../schema/series.schema.json
spec_version: 1
kind: series
id: mir:info.unet.stable-diffusion-xl
variants:
  base:
    repo: stabilityai/stable-diffusion-xl-base-1.0
    backends:
      - package: diffusers
        class: StableDiffusionXLPipeline
        generation:
          width: 1024
          height: 1024
    fingerprints:
      - format: ldm
        required:
          a.weight: [320, 4, 3, 3]
    upstream:
      key: info.unet.stable-diffusion-xl
      compat: "*"
    alpha: 2
    zeta: 1
  refiner:
    repo: org/refiner
"""


def test_known_keys_in_schema_order_unknown_sorted_data_keeps_order() -> None:
    assert write(SPEC) == EXPECTED


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("no", '"no"'),
        ("2021-01-01", '"2021-01-01"'),
        ("0123", '"0123"'),
        ("1e5", '"1e5"'),
        ("null", '"null"'),
        ("a: b", '"a: b"'),
        ("x #y", '"x #y"'),
        ("a\nb", '"a\\nb"'),
        ("\u2028", '"\\u2028"'),
        ("F8_E5M2", "F8_E5M2"),
        ("Stable Diffusion XL", "Stable Diffusion XL"),
        ("mir:ops.precision.float:f16", "mir:ops.precision.float:f16"),
        (1e-05, "1.0e-05"),
        (1e16, "1.0e+16"),
        (0.125, "0.125"),
        (-0.0, "-0.0"),
        (None, "null"),
        (True, "true"),
    ],
)
def test_scalar_text(value: Any, text: str) -> None:
    assert scalar_text(value) == text


@pytest.mark.parametrize("value", [math.inf, math.nan, "\ud800", object()])
def test_unwritable_values_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        write({"x": value})


def test_short_lists_flow_long_lists_block() -> None:
    hashes = ["a" * 64, "b" * 64]
    text = write({"shape": [320, 4, 3, 3], "hashes": hashes})
    assert "shape: [320, 4, 3, 3]\n" in text
    assert f"hashes:\n  - {'a' * 64}\n  - {'b' * 64}\n" in text


def test_schema_ref_is_relative_to_the_file() -> None:
    assert schema_ref("models/unet/x.yaml", "series") == "../../schema/series.schema.json"
    assert schema_ref("taxonomy.yaml", "taxonomy") == "schema/taxonomy.schema.json"


def _properties(schema: dict[str, Any]) -> list[str]:
    return list(schema["properties"])


def test_record_orders_follow_the_schemas() -> None:
    """The writer's key orders are the schemas' property orders (plus ops' dtype)."""
    schemas = {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in (ROOT / "spec" / "schema").glob("*.schema.json")
    }
    series = schemas["series.schema.json"]
    assert list(DOCUMENT.order) == _properties(series)
    variant = [k for k in VARIANT.order if k != "dtype"]
    assert variant == _properties(series["$defs"]["variant"])
    assert list(BACKEND.order) == _properties(schemas["common.schema.json"]["$defs"]["backend"])
    dimensions = series["$defs"]["variant"]["properties"]["dimensions"]
    assert list(DIMENSIONS.order) == _properties(dimensions)
    ops_variant = schemas["ops.schema.json"]["properties"]["variants"]["additionalProperties"]
    ops_order = [k for k in VARIANT.order if k in ops_variant["properties"]]
    assert ops_order == _properties(ops_variant)


@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
            min_size=1,
            max_size=15,
        ),
        min_size=12,
        max_size=40,
    )
)
def test_long_prose_is_folded_and_reads_back_the_same(words: list[str]) -> None:
    from compiler.interop.specwrite import _fold, _foldable
    from compiler.yamlfile import load_yaml

    text = " ".join(words)
    if not _foldable(text, len("description:")):
        return
    block = "description: >-\n" + "\n".join(_fold(text, 2)) + "\n"
    assert all(len(line) <= 100 for line in block.splitlines())
    assert load_yaml(block.encode(), "t.yaml").value == {"description": text}
