"""Mecha recipes, reading: the error tables, the fast path against the grammar, leniency."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import UnexpectedInput

from compiler.diagnostics import MircError, render_text
from compiler.lang.grammar import lalr_parser
from compiler.lang.mecha.ast import (
    Bool,
    Comment,
    Dict,
    Float,
    Int,
    Keyword,
    Merge,
    Model,
    Null,
    Recipe,
    Ref,
    Str,
)
from compiler.lang.mecha.check import check_recipe
from compiler.lang.mecha.format import format_recipe
from compiler.lang.mecha.parser import MAX_BYTES, fast_lines, parse_recipe
from compiler.lang.mecha.syntax import (
    MECHA_CHAR_ERRORS,
    MECHA_ERRORS,
    MECHA_STRING_ERRORS,
    MECHA_WORD_ERRORS,
    grammar_lines,
)

SD_MECHA_TEXT = (
    "version 0.1.0\n"
    'model "a.safetensors" model_config="sdxl-sgm" merge_space="weight"\n'
    "# a comment\n"
    'model "b \\"quoted\\" \\\\ path" model_config=null\n'
    'merge "weighted_sum" &0 &1 alpha=0.5\n'
    "dict BASE=1 IN00=-2.5e-05 flag=true none=null"
)


def first_message(text: str) -> str:
    with pytest.raises(MircError) as info:
        parse_recipe(text, "t.mecha")
    return info.value.diagnostics[0].message


def template(message: str) -> str:
    """A table message with its ``{word}``/``{code}``/``{escape}`` holes as a pattern."""
    pattern = re.escape(message)
    for hole, fill in (("word", ".+"), ("code", r"U\+[0-9A-F]{4}"), ("escape", r"\\.?")):
        pattern = pattern.replace(r"\{" + hole + r"\}", fill)
    return pattern


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in MECHA_ERRORS.items() for ex in exs]
)
def test_error_table(label: str, example: str) -> None:
    assert first_message(example) == label


WORDED = [
    (w.message, ex)
    for table in (MECHA_CHAR_ERRORS, MECHA_WORD_ERRORS)
    for w in table
    for ex in w.examples
] + [(message, ex) for message, exs in MECHA_STRING_ERRORS.items() for ex in exs]


@pytest.mark.parametrize(("message", "example"), WORDED)
def test_worded_error_tables(message: str, example: str) -> None:
    assert re.fullmatch(template(message), first_message(example))


BUILDER_CASES = {
    'models "a"': "unknown command 'models'; a line is model, merge, literal, dict or version",
    "model 1": 'model takes a quoted path first, e.g. model "a.safetensors"',
    "model": 'model takes a quoted path first, e.g. model "a.safetensors"',
    "merge &0": 'merge takes the method name in quotes first, e.g. merge "weighted_sum" &0 &1',
    "dict &0 a=1": "dict takes only key=value pairs",
    'merge "m" a=1 &0': "a positional argument cannot follow keyword arguments",
    'merge "m" a=1 a=2': "'a' is given twice",
    "dict a=1e400": "number 1e400 is too large for a 64-bit float",
    "dict a=-1e-400": "number -1e-400 is too small for a 64-bit float (it would read as 0)",
    "dict a=9223372036854775808": "integer 9223372036854775808 is out of range; "
    "recipe integers fit in 64 bits",
    "dict a=" + "9" * 5000: f"integer {'9' * 5000} is out of range; recipe integers fit in 64 bits",
    'merge "m" &12345678901': "reference &12345678901 is out of range",
    "": "the recipe has no expressions; its last expression is its output",
    "# only a comment\n\n": "the recipe has no expressions; its last expression is its output",
    'model "a"\nversion 0.1.0': "the version line must come before the first expression",
    "version 0.1.0\nversion 0.1.0\nmodel": "a second version line",
    'version 0.2.0\nmodel "a"': "unsupported recipe format version 0.2.0; mirc reads 0.1.0",
}


@pytest.mark.parametrize(("text", "message"), BUILDER_CASES.items())
def test_builder_errors(text: str, message: str) -> None:
    assert first_message(text) == message


def test_every_problem_is_reported_with_its_place() -> None:
    text = 'model "a" a=1 a=2\nfoo\ndict x=1e999\nmodel "b"'
    with pytest.raises(MircError) as info:
        parse_recipe(text, "t.mecha")
    places = [(d.span.line, d.span.col) for d in info.value.diagnostics if d.span]
    assert places == [(1, 15), (2, 1), (3, 8)]
    rendered = render_text(info.value.diagnostics[0]).splitlines()
    assert rendered[0] == "t.mecha:1:15: error: 'a' is given twice"
    assert rendered[2].index("^") == rendered[1].index("a=2")


def test_a_control_character_keeps_the_source_line_whole() -> None:
    with pytest.raises(MircError) as info:
        parse_recipe('model "a\x0cb"', "t.mecha")
    span = info.value.diagnostics[0].span
    assert span is not None and span.source_line == 'model "a\x0cb"' and span.col == 9


def test_the_tree() -> None:
    recipe = parse_recipe(SD_MECHA_TEXT, "t.mecha")
    assert recipe.version == "0.1.0" and recipe.file == "t.mecha"
    model, comment, quoted, merge, mapping = recipe.items
    assert model == Model(
        Str("a.safetensors"),
        (),
        (Keyword("model_config", Str("sdxl-sgm")), Keyword("merge_space", Str("weight"))),
    )
    assert comment == Comment(" a comment")
    assert quoted == Model(Str('b "quoted" \\ path'), (), (Keyword("model_config", Null()),))
    assert merge == Merge(Str("weighted_sum"), (Ref(0), Ref(1)), (Keyword("alpha", Float(0.5)),))
    assert mapping == Dict(
        (
            Keyword("BASE", Int(1)),
            Keyword("IN00", Float(-2.5e-05)),
            Keyword("flag", Bool(True)),
            Keyword("none", Null()),
        )
    )
    assert merge.span.line == 5 and merge.span.col == 1
    assert merge.args[1].span.col == 25 and merge.args[1].span.end_col == 27


def test_int_float_and_bool_stay_apart() -> None:
    ints, floats, bools = (parse_recipe(f"dict a={v}").items[0] for v in ("1", "1.0", "true"))
    assert ints != floats and ints != bools and floats != bools


def separated(text: str, separator: str) -> str:
    """``text`` with each space between arguments (not in strings or comments) replaced."""

    def line(source: str) -> str:
        if source.lstrip().startswith("#"):
            return source
        return re.sub(r'"(?:[^"\\]|\\.)*"| ', lambda m: separator if m[0] == " " else m[0], source)

    return "\n".join(line(source) for source in text.split("\n"))


def variants(text: str) -> dict[str, str]:
    """Spellings of ``text`` that must read the same: mirc is lenient on layout."""
    return {
        "crlf": text.replace("\n", "\r\n"),
        "bom": "\ufeff" + text,
        "final newline": text + "\n",
        "tabs": separated(text, "\t"),
        "wide spacing": separated(text, " \t  "),
        "blank lines and indentation": "\n\n" + text.replace("\n", "\n  \n\t ") + "  \n\n",
        "trailing spaces": text.replace("\n", " \t\n") + "  ",
    }


@pytest.mark.parametrize("variant", variants("").keys())
def test_layout_variants_parse_equal(variant: str) -> None:
    text = variants(SD_MECHA_TEXT)[variant]
    assert parse_recipe(text) == parse_recipe(SD_MECHA_TEXT)


def test_the_seed_dialect_reads_like_sd_mechas() -> None:
    seed = 'model "a"\nmodel "b"\ncall "weighted_sum" &0 &1 alpha=0.5'
    ours = "version 0.1.0\n" + seed.replace("call", "merge")
    assert parse_recipe(seed) == parse_recipe(ours)
    assert parse_recipe(seed).version is None and parse_recipe(ours).version == "0.1.0"


def test_equals_inside_a_quoted_string_is_content() -> None:
    [model] = parse_recipe('model "a=b" x="c=d"').items
    assert model == Model(Str("a=b"), (), (Keyword("x", Str("c=d")),))


def test_keywords_may_be_named_like_constants_and_commands() -> None:
    [mapping] = parse_recipe("dict null=1 true=2 version=3 model=4").items
    assert isinstance(mapping, Dict)
    assert [k.name for k in mapping.kwargs] == ["null", "true", "version", "model"]


def test_size_cap() -> None:
    line = 'model "' + "a" * 1000 + '"\n'
    assert parse_recipe(line * 1000)
    with pytest.raises(MircError) as info:
        parse_recipe(line * (MAX_BYTES // len(line) + 1))
    assert info.value.diagnostics[0].code == "recipe-too-large"


FRAGMENTS = [
    "model",
    "merge",
    "call",
    "dict",
    "literal",
    "version",
    "0.1.0",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    '"a"',
    '"',
    "\\",
    "&0",
    "&1",
    "0.5",
    "-1e5",
    "07",
    "-",
    "=",
    "alpha",
    "alpha=",
    "null",
    "true",
    "#",
    "# c",
    "x",
    ".",
    "'",
    "\x0c",
    "\ufeff",
    "\xa0",
]
RECIPE_LIKE = st.lists(st.sampled_from(FRAGMENTS), max_size=16).map("".join)


@settings(max_examples=400)
@given(RECIPE_LIKE | st.text(max_size=30))
def test_fast_path_and_grammar_agree(text: str) -> None:
    fast = fast_lines(text)
    try:
        slow = grammar_lines(text, "t")
    except MircError:
        slow = None
    assert fast == slow


@settings(max_examples=300)
@given(RECIPE_LIKE | st.text(max_size=40))
def test_only_mirc_errors_escape(text: str) -> None:
    try:
        recipe = parse_recipe(text)
    except MircError as exc:
        assert exc.diagnostics and all(d.span is not None for d in exc.diagnostics)
        return
    assert isinstance(recipe, Recipe) and recipe.expressions
    check_recipe(recipe)
    assert parse_recipe(format_recipe(recipe)) == recipe


@settings(max_examples=300)
@given(RECIPE_LIKE)
def test_every_syntax_error_is_worded_by_a_table(text: str) -> None:
    """No error falls through to the generic wording: the tables cover every parser state."""
    try:
        parse_recipe(text)
    except MircError as exc:
        assert "in the recipe" not in exc.diagnostics[0].message


def test_grammar_rejects_what_the_fast_path_rejects() -> None:
    with pytest.raises(UnexpectedInput):
        lalr_parser("mecha").parse('model "a" alpha = 1')
    assert fast_lines('model "a" alpha = 1') is None
