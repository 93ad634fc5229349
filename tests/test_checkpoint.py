"""MMPretrain checkpoint names: fixtures, the error table, date and hash checks, the CLI."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.lang.checkpoint import CHECKPOINT_ERRORS, CheckpointName, parse_checkpoint
from compiler.lang.mmpretrain import DataInfo, ModelName, TrainingInfo
from tests.conftest import check_snapshot, run_mirc
from tests.test_mmpretrain import MODELS

FIXTURES = Path(__file__).parent / "fixtures" / "mmpretrain"


def fixture_lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("text", fixture_lines("checkpoints.txt"))
def test_canonical_checkpoints_format_to_themselves(text: str) -> None:
    assert str(parse_checkpoint(text)) == text


def test_parts() -> None:
    checkpoint = parse_checkpoint("resnet50_8xb32_in1k_20210831-ea4938fc.pth")
    model = ModelName("resnet50", TrainingInfo(8, 32), DataInfo("in1k"))
    assert checkpoint == CheckpointName(model, datetime.date(2021, 8, 31), "ea4938fc")


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in CHECKPOINT_ERRORS.items() for ex in exs]
)
def test_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_checkpoint(example)
    assert info.value.diagnostics[0].message == label


SEMANTIC_CASES = {
    "resnet50_8xb32_in1k_20210231-ea4938fc.pth": [
        ("20210231 is not a calendar date (day is out of range for month)", 21, 29)
    ],
    "resnet50_8xb32_in1k_20211301-ea4938fc.pth": [
        ("20211301 is not a calendar date (unconverted data remains: 1)", 21, 29)
    ],
    "resnet50_8xb32_in1k_2021083-ea4938fc.pth": [
        ("a checkpoint date is YYYYMMDD (8 digits); '2021083' has 7", 21, 28)
    ],
    "resnet50_8xb32_in1k_20210831-ea4938f.pth": [
        ("a checkpoint hash is 8 lowercase hexadecimal digits; got 'ea4938f'", 30, 37)
    ],
    "resnet50_8xb32_in1k_20210831-ea4938fg.pth": [
        ("a checkpoint hash is 8 lowercase hexadecimal digits; got 'ea4938fg'", 30, 38)
    ],
    "r_8xb32_in1k_20219999-zz.pth": [
        ("20219999 is not a calendar date (unconverted data remains: 99)", 14, 22),
        ("a checkpoint hash is 8 lowercase hexadecimal digits; got 'zz'", 23, 25),
    ],
}


@pytest.mark.parametrize(("text", "expected"), SEMANTIC_CASES.items())
def test_date_and_hash_errors_point_at_their_columns(
    text: str, expected: list[tuple[str, int, int]]
) -> None:
    with pytest.raises(MircError) as info:
        parse_checkpoint(text)
    found = [(d.message, d.span.col, d.span.end_col) for d in info.value.diagnostics]  # type: ignore[union-attr]
    assert found == expected


def test_model_name_errors_are_reported_inside_a_checkpoint_name() -> None:
    with pytest.raises(MircError) as info:
        parse_checkpoint("resnet50_8xb32_in1K_20210831-ea4938fc.pth")
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message == "MMPretrain names are lowercase"
    assert diagnostic.span is not None and diagnostic.span.col == 19
    with pytest.raises(MircError) as info:
        parse_checkpoint("resnet50_8xb32_in1k_20210831-EA4938FC.pth")
    assert info.value.diagnostics[0].span.col == 30  # type: ignore[union-attr]


HASHES = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)
DATES = st.dates(datetime.date(1000, 1, 1), datetime.date(9999, 12, 31))


@given(st.builds(CheckpointName, MODELS, DATES, HASHES))
def test_format_then_parse_is_identity(checkpoint: CheckpointName) -> None:
    assert parse_checkpoint(str(checkpoint)) == checkpoint


@given(st.text(alphabet="r50_8xb32-in1k2021083ea.pthEA ", max_size=50) | st.text(max_size=50))
def test_only_mirc_errors_escape(text: str) -> None:
    try:
        parse_checkpoint(text)
    except MircError as exc:
        assert exc.diagnostics and all(d.span is not None for d in exc.diagnostics)


def test_cli_json_prints_date_hash_and_model() -> None:
    run = run_mirc("parse", "--kind", "checkpoint", "resnet50_8xb32_in1k_20210831-ea4938fc.pth")
    assert run.status == 0 and run.out.startswith("resnet50_8xb32_in1k_20210831-ea4938fc.pth  ")
    run = run_mirc(
        "parse", "--kind", "checkpoint", "resnet50_8xb32_in1k_20210831-ea4938fc.pth", "--json"
    )
    [fields] = json.loads(run.out)
    assert fields["date"] == "2021-08-31" and fields["hash"] == "ea4938fc"
    assert fields["model"]["training"]["total_batch"] == 256


def test_cli_bad_date_snapshot() -> None:
    run = run_mirc("parse", "--kind", "checkpoint", "resnet50_8xb32_in1k_20210231-ea4938fc.pth")
    assert run.status == 1 and run.out == ""
    check_snapshot("cli/parse-checkpoint-bad-date.txt", run.err)
