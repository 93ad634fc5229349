"""The JSON Schemas: valid draft 2020-12, cross-references resolve, editors can find them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from compiler.load import discover
from compiler.validate.schema import SCHEMA_FILES, validators
from tests.conftest import ROOT

SCHEMA_DIR = ROOT / "spec" / "schema"
SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=(\S+)")


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.schema.json")), ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == path.name


def test_every_kind_has_a_validator_and_refs_resolve() -> None:
    checkers = validators(SCHEMA_DIR)
    assert set(checkers) == set(SCHEMA_FILES)
    series = checkers["series"]
    bad = {"spec_version": 1, "kind": "series", "id": "x", "variants": {"base": {}}}
    # the error comes from common.schema.json's mirId, reached through a $ref
    assert any("does not match" in e.message for e in series.iter_errors(bad))


def test_every_spec_names_its_schema_for_editors() -> None:
    kinds = {"series": "series", "ops": "ops", "target": "target", "taxonomy": "taxonomy"}
    for path, kind in discover(ROOT / "spec"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = SCHEMA_LINE.fullmatch(first)
        assert match, f"{path}: first line must be a yaml-language-server $schema comment"
        target = (path.parent / match.group(1)).resolve()
        assert target == SCHEMA_DIR / f"{kinds[kind]}.schema.json", path
