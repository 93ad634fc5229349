"""MIR identifiers: round-trip fixtures, the labelled error table, properties, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark import UnexpectedInput

from compiler.diagnostics import MircError, render_text
from compiler.lang.grammar import lalr_parser
from compiler.lang.mir import MAX_LENGTH, MIR_CHAR_ERRORS, MIR_ERRORS, MirId, parse_mir
from compiler.lang.mir import _parse_slow as parse_with_grammar
from tests.conftest import check_snapshot, run_mirc

FIXTURES = Path(__file__).parent / "fixtures" / "mir"


def fixture_lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("text", fixture_lines("identity.txt"))
def test_canonical_ids_format_to_themselves(text: str) -> None:
    assert str(parse_mir(text)) == text
    assert parse_with_grammar(text, "<t>") == parse_mir(text)


@pytest.mark.parametrize("line", fixture_lines("pairs.txt"))
def test_equivalent_spellings_parse_equal(line: str) -> None:
    given_text, canonical = line.split("\t")
    assert parse_mir(given_text) == parse_mir(canonical)
    assert str(parse_mir(given_text)) == canonical


def test_parts() -> None:
    mir = parse_mir("mir:model.lora.hyper:flux-1")
    assert mir == MirId("model", "lora", "hyper", "flux-1", None)
    assert mir.key == "model.lora.hyper:flux-1"
    assert mir.series_id == MirId("model", "lora", "hyper")
    with_mod = parse_mir("info.lora.lcm:sdxl@8cfg")
    assert with_mod.modifier == "8cfg" and with_mod.compat == "sdxl"


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in MIR_ERRORS.items() for ex in exs]
)
def test_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_mir(example)
    assert info.value.diagnostics[0].message == label


CHAR_CASES = {
    "model.DiT.flux": ("MIR identifiers are lowercase", 7),
    "model.dit.flux_1": ("'_' is not allowed in a MIR identifier; use '-'", 15),
    "model.dit.flux-": (MIR_CHAR_ERRORS[2][1], 15),
    "model.dit.flux--1": (MIR_CHAR_ERRORS[2][1], 15),
    "model.dit.-flux": (MIR_CHAR_ERRORS[2][1], 11),
    "model.dit.flux\n": ("whitespace is not allowed in a MIR identifier", 15),
    "model.dit.flux ": ("whitespace is not allowed in a MIR identifier", 15),
    " model.dit.flux": ("whitespace is not allowed in a MIR identifier", 1),
    "model.dit.fl$ux": ("MIR names are lowercase letters, digits and single hyphens", 13),
}


@pytest.mark.parametrize(("text", "expected"), CHAR_CASES.items())
def test_bad_characters_are_named_with_their_column(text: str, expected: tuple[str, int]) -> None:
    with pytest.raises(MircError) as info:
        parse_mir(text)
    diagnostic = info.value.diagnostics[0]
    assert (diagnostic.message, diagnostic.span.col) == expected  # type: ignore[union-attr]


def test_length_cap() -> None:
    longest = "info.dit." + "a" * (MAX_LENGTH - len("info.dit."))
    assert parse_mir(longest).series == "a" * (MAX_LENGTH - 9)
    with pytest.raises(MircError) as info:
        parse_mir(longest + "a")
    assert "at most 256" in info.value.diagnostics[0].message


NAME = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,3}", fullmatch=True)
IDS = st.builds(
    MirId,
    st.sampled_from(["dev", "model", "ops", "info"]),
    NAME,
    NAME,
    st.none() | NAME,
    st.none() | NAME,
)


@given(IDS)
def test_format_then_parse_is_identity(mir: MirId) -> None:
    assert parse_mir(str(mir)) == mir
    assert parse_mir(mir.key) == mir


@given(st.text(alphabet="mirodelnfsv.:@-_ aAzZ019\n\t", max_size=40) | st.text(max_size=40))
def test_fast_path_and_grammar_agree_and_only_mirc_errors_escape(text: str) -> None:
    try:
        fast = parse_mir(text)
    except MircError as exc:
        fast = None
        assert exc.diagnostics and exc.diagnostics[0].span is not None
    try:
        lalr_parser("mir").parse(text)
        grammar_accepts = True
    except UnexpectedInput:
        grammar_accepts = False
    assert (fast is not None) == grammar_accepts


def test_cli_json_prints_the_parts() -> None:
    run = run_mirc("parse", "mir:model.lora.hyper:flux-1", "--json")
    assert run.status == 0
    [parts] = json.loads(run.out)
    assert parts["domain"] == "model" and parts["arch"] == "lora"
    assert parts["series"] == "hyper" and parts["compat"] == "flux-1"


def test_cli_normalises_architecture_aliases() -> None:
    run = run_mirc("parse", "info.artm.gpt2", "--json")
    assert run.status == 0
    [parts] = json.loads(run.out)
    assert parts["id"] == "mir:info.art.gpt2" and parts["arch_alias"] == "artm"


def test_cli_bad_id_snapshot() -> None:
    run = run_mirc("parse", "mir:model.lora.Hyper:flux-1")
    assert run.status == 1 and run.out == ""
    assert run.err.startswith("<arg>:1:16: error: MIR identifiers are lowercase\n")
    check_snapshot("cli/parse-bad-id.txt", run.err)


def test_cli_unknown_architecture_suggests_nearest() -> None:
    run = run_mirc("parse", "model.dti.flux1-dev")
    assert run.status == 1
    check_snapshot("cli/parse-unknown-arch.txt", run.err)
    assert "did you mean 'dit'?" in run.err


def test_cli_reports_every_bad_argument_and_still_prints_good_ones() -> None:
    run = run_mirc("parse", "model.dit.ok", "model.dit.", "model.dit.fine")
    assert run.status == 1
    assert run.out.count("mir:model.dit.") == 2
    assert run.err.count("error:") == 1


def test_usage_error_exits_2() -> None:
    assert run_mirc("parse").status == 2
    assert run_mirc("no-such-command").status == 2


def test_rendered_caret_lines_up_under_the_column() -> None:
    with pytest.raises(MircError) as info:
        parse_mir("model.dit.flux_1")
    lines = render_text(info.value.diagnostics[0]).splitlines()
    assert lines[2].index("^") == lines[1].index("_")
