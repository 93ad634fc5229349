"""CivitAI AIRs: round-trip fixtures, the labelled error table, properties, crosswalk, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from lark import UnexpectedInput

from compiler.diagnostics import MircError, Severity
from compiler.lang.air import (
    AIR_CHAR_ERRORS,
    AIR_ERRORS,
    MAX_LENGTH,
    Air,
    addon_series,
    air_to_mir,
    load_crosswalk,
    parse_air,
)
from compiler.lang.air import _parse_slow as parse_with_grammar
from compiler.lang.grammar import lalr_parser
from compiler.lang.mir import MirId
from compiler.taxonomy import load_taxonomy
from tests.conftest import check_snapshot, run_mirc, upstream_entries

FIXTURES = Path(__file__).parent / "fixtures" / "air"


def fixture_lines(name: str) -> list[str]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("text", fixture_lines("identity.txt"))
def test_canonical_airs_format_to_themselves(text: str) -> None:
    assert str(parse_air(text)) == text
    assert parse_with_grammar(text, "<t>") == parse_air(text)


@pytest.mark.parametrize("line", fixture_lines("pairs.txt"))
def test_prefixes_are_optional(line: str) -> None:
    given_text, canonical = line.split("\t")
    assert parse_air(given_text) == parse_air(canonical)
    assert str(parse_air(given_text)) == canonical


def test_parts() -> None:
    air = parse_air("urn:air:sdxl:checkpoint:civitai:827184@2514310+2402203.safetensor")
    assert air == Air("sdxl", "checkpoint", "civitai", "827184", "2514310", "2402203", "safetensor")
    hub = parse_air("sd1:model:huggingface:runwayml/stable-diffusion-v1-5")
    assert (hub.source, hub.id) == ("huggingface", "runwayml/stable-diffusion-v1-5")
    assert hub.version is None


def test_a_final_dot_word_is_the_format_and_other_dots_belong_to_the_id() -> None:
    assert parse_air("sdxl:vae:huggingface:org/vae-1.0").id == "org/vae-1.0"
    air = parse_air("sdxl:vae:huggingface:org/vae-1.0.safetensor")
    assert (air.id, air.format) == ("org/vae-1.0", "safetensor")


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in AIR_ERRORS.items() for ex in exs]
)
def test_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_air(example)
    assert info.value.diagnostics[0].message == label


CHAR_CASES = {
    "sdxl:Lora:civitai:1": ("expected the resource type (e.g. checkpoint, lora)", 6),
    "sdxl:lora:civitai:1 ": ("whitespace is not allowed in an AIR", 20),
    "sdxl:lora:civitai:a/": (AIR_CHAR_ERRORS[1][1], 20),
    "sdxl:lora:civitai:/a": (AIR_CHAR_ERRORS[1][1], 19),
    "sdxl:lora:civitai:1#": (AIR_CHAR_ERRORS[2][1], 20),
}


@pytest.mark.parametrize(("text", "expected"), CHAR_CASES.items())
def test_bad_characters_are_named_with_their_column(text: str, expected: tuple[str, int]) -> None:
    with pytest.raises(MircError) as info:
        parse_air(text)
    diagnostic = info.value.diagnostics[0]
    assert (diagnostic.message, diagnostic.span.col) == expected  # type: ignore[union-attr]


def test_length_cap() -> None:
    head = "sdxl:lora:civitai:"
    assert parse_air(head + "1" * (MAX_LENGTH - len(head))).id.startswith("1")
    with pytest.raises(MircError) as info:
        parse_air(head + "1" * (MAX_LENGTH - len(head) + 1))
    assert "at most 256" in info.value.diagnostics[0].message


KEY = st.from_regex(r"[a-z0-9]{1,5}([_-][a-z0-9]{1,4}){0,2}", fullmatch=True)
REF = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
ID = st.from_regex(r"[A-Za-z0-9_-]{1,6}([/.][A-Za-z0-9_-]{1,6}){0,3}", fullmatch=True).filter(
    lambda text: re.search(r"\.[a-z]+\Z", text) is None
)
AIRS = st.builds(
    Air,
    KEY,
    KEY,
    KEY,
    ID,
    st.none() | REF,
    st.none() | REF,
    st.none() | st.from_regex(r"[a-z]{1,10}", fullmatch=True),
)


@given(AIRS)
def test_format_then_parse_is_identity(air: Air) -> None:
    assert parse_air(str(air)) == air
    assert parse_with_grammar(str(air), "<t>") == air
    assume(air.ecosystem not in ("urn", "air"))
    assert parse_air(str(air).removeprefix("urn:air:")) == air


@given(st.text(alphabet="urnai:sdxl@+._-/Aa19 \n", max_size=40) | st.text(max_size=40))
def test_fast_path_and_grammar_agree_and_only_mirc_errors_escape(text: str) -> None:
    try:
        fast = parse_air(text)
    except MircError as exc:
        fast = None
        assert exc.diagnostics and exc.diagnostics[0].span is not None
    try:
        lalr_parser("air").parse(text)
        grammar_accepts = True
    except UnexpectedInput:
        grammar_accepts = False
    assert (fast is not None) == grammar_accepts


CROSSWALK = {
    "urn:air:sdxl:checkpoint:civitai:101055@128078": "mir:info.unet.stable-diffusion-xl",
    "urn:air:sdxl:lora:civitai:328553@368189": "mir:info.lora.civitai-328553:stable-diffusion-xl",
    "air:flux1:checkpoint:civitai:618692@691639": "mir:info.dit.flux-1-dev",
    "sd1:model:huggingface:runwayml/stable-diffusion-v1-5": "mir:info.unet.stable-diffusion-v1",
    "pony:checkpoint:civitai:1@2": "mir:info.unet.stable-diffusion-xl:pony-diffusion",
    "illustrious:lycoris:civitai:7": "mir:info.lora.civitai-7:stable-diffusion-xl",
    "sd3:embedding:civitai:9": "mir:info.embedding.civitai-9:stable-diffusion-3",
    "sdxl:vae:huggingface:madebyollin/sdxl-vae-fp16-fix": (
        "mir:info.vae.huggingface-madebyollin-sdxl-vae-fp16-fix:stable-diffusion-xl"
    ),
    "hyv1:motionmodule:civitai:5": "mir:info.lora.civitai-5:hunyuanvideo",
}


@pytest.mark.parametrize(("text", "expected"), CROSSWALK.items())
def test_crosswalk(text: str, expected: str) -> None:
    conversion = air_to_mir(parse_air(text), text)
    assert str(conversion.mir) == expected and conversion.diagnostics == ()


@pytest.mark.parametrize(
    ("text", "note", "col"),
    [
        ("urn:air:other:checkpoint:civitai:1", "the 'other' ecosystem names no model family", 9),
        ("sdxl:upscaler:civitai:147759", "upscalers belong to no model family", 6),
        ("sdxk:lora:civitai:1", "did you mean 'sdxl'?", 1),
        ("sdxl:lorra:civitai:1", "did you mean 'lora' or 'dora'?", 6),
    ],
)
def test_unmapped_airs_give_a_positioned_warning(text: str, note: str, col: int) -> None:
    conversion = air_to_mir(parse_air(text), text)
    [warning] = conversion.diagnostics
    assert conversion.mir is None and warning.severity is Severity.WARNING
    assert warning.notes[0] == note and warning.span is not None and warning.span.col == col


def test_crosswalk_targets_are_known_architectures_and_valid_names() -> None:
    crosswalk, taxonomy = load_crosswalk(), load_taxonomy()
    archs = [f.arch for f in crosswalk.ecosystems.values()]
    archs += [k.arch for k in crosswalk.types.values() if k.arch is not None]
    assert all(taxonomy.canonical_arch(arch) == arch for arch in archs)
    assert not set(crosswalk.ecosystems) & set(crosswalk.unmapped_ecosystems)
    assert not set(crosswalk.types) & set(crosswalk.unmapped_types)
    for family in crosswalk.ecosystems.values():
        MirId(crosswalk.domain, family.arch, family.series, family.variant)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", family.series)


def test_crosswalk_series_exist_in_the_upstream_database() -> None:
    """Each family is an upstream series (or, for sd2, at least an upstream compat name)."""
    entries = upstream_entries()
    series = {".".join(entry.key.split(".")[1:3]) for entry in entries}
    compat_names = {".".join(entry.key.split(".")[2:3]) for entry in entries}
    crosswalk = load_crosswalk()
    missing = [
        name
        for name, family in crosswalk.ecosystems.items()
        if f"{family.arch}.{family.series}" not in series and family.series not in compat_names
    ]
    assert missing == []


@given(KEY, ID)
def test_addon_series_is_a_mir_name(source: str, ident: str) -> None:
    series = addon_series(Air("sdxl", "lora", source, ident))
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", series) or series == ""


def test_cli_json_prints_parts_and_mir() -> None:
    run = run_mirc("parse", "--kind", "air", "urn:air:sdxl:lora:civitai:328553@368189", "--json")
    assert run.status == 0 and run.err == ""
    [parts] = json.loads(run.out)
    assert parts["ecosystem"] == "sdxl" and parts["type"] == "lora" and parts["version"] == "368189"
    assert parts["mir"] == "mir:info.lora.civitai-328553:stable-diffusion-xl"


def test_cli_unmapped_air_warns_and_exits_0() -> None:
    run = run_mirc("parse", "--kind", "air", "urn:air:other:upscaler:civitai:147759@164821")
    assert run.status == 0
    assert run.out.endswith("->  (no MIR id)\n")
    check_snapshot("cli/parse-air-unmapped.txt", run.err)


def test_cli_bad_air_snapshot() -> None:
    run = run_mirc("parse", "--kind", "air", "urn:air:sdxl:lora@368189")
    assert run.status == 1 and run.out == ""
    check_snapshot("cli/parse-air-bad.txt", run.err)
