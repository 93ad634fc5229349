"""The hardened YAML loader: one test per rule, positions, and properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.yamlfile import MAX_BYTES, MAX_DEPTH, Position, load_yaml


def load(text: str | bytes) -> object:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return load_yaml(data, "t.yaml").value


def rejection(text: str | bytes) -> tuple[str, int, int]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(MircError) as info:
        load_yaml(data, "t.yaml")
    [diagnostic] = info.value.diagnostics
    assert diagnostic.span is not None
    return diagnostic.message, diagnostic.span.line, diagnostic.span.col


def test_yaml_12_scalars() -> None:
    value = load(
        "a: no\nb: on\nc: 2021-01-01\nd: 1.5\ne: 7\nf: ~\ng: true\nh: '010'\ni: -3\nj: 1e3\n"
    )
    assert value == {
        "a": "no",
        "b": "on",
        "c": "2021-01-01",
        "d": 1.5,
        "e": 7,
        "f": None,
        "g": True,
        "h": "010",
        "i": -3,
        "j": 1000.0,
    }


def test_every_node_keeps_its_position() -> None:
    document = load_yaml(b"a:\n  - x\n  - {b: 1}\n", "t.yaml")
    assert document.positions[("a", 1, "b")] == Position(3, 9)
    assert document.key_positions[("a",)] == Position(1, 1)
    assert document.span(("a", 0)).location == "t.yaml:2:5"


REJECTED = {
    "duplicate key": ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first at line 1, column 1)", 3, 1),
    "nested duplicate": ("a:\n  b: 1\n  b: 2\n", "duplicate key 'b'", 3, 3),
    "anchor": ("a: &x 1\n", "anchors (&name) are not allowed in spec files", 1, 4),
    "alias": ("a: 1\nb: *x\n", "aliases (*name) are not allowed", 2, 4),
    "merge key": ("a: {x: 1}\n<<: {y: 2}\n", "merge keys (<<) are not allowed", 2, 1),
    "tag": ("a: !!python/object:os.system x\n", "tags (tag:yaml.org,2002:python/object", 1, 4),
    "local tag": ("a: !foo x\n", "tags (!foo) are not allowed", 1, 4),
    "int key": ("1: x\n", "mapping keys must be strings; quote '1'", 1, 1),
    "null key": ("~: x\n", "mapping keys must be strings", 1, 1),
    "collection key": ("? [a]\n: 1\n", "mapping keys must be plain strings", 1, 3),
    "leading zero": ("a: 0123\n", "number '0123' has a leading zero", 1, 4),
    "octal": ("a: 0o17\n", "leading zero or a base prefix", 1, 4),
    "hex": ("a: 0x1F\n", "leading zero or a base prefix", 1, 4),
    "inf": ("a: .inf\n", "'.inf' is not a finite number", 1, 4),
    "nan": ("a: .nan\n", "'.nan' is not a finite number", 1, 4),
    "huge float": ("a: 1e400\n", "number '1e400' is too large", 1, 4),
    "two documents": ("a: 1\n---\nb: 2\n", "one YAML document; found a second", 2, 1),
    "syntax": ("a: [1\n", "YAML syntax", 2, 1),
    "tab indent": ("a:\n\tb: 1\n", "YAML syntax", 2, 1),
}


@pytest.mark.parametrize(("text", "message", "line", "col"), REJECTED.values(), ids=REJECTED)
def test_rejections_say_where(text: str, message: str, line: int, col: int) -> None:
    got_message, got_line, got_col = rejection(text)
    assert message in got_message
    assert (got_line, got_col) == (line, col)


def test_alias_with_an_anchor_is_refused_at_the_anchor() -> None:
    assert rejection("a: &x [1]\nb: *x\n")[0].startswith("anchors")


def test_billion_laughs_is_refused_before_expanding() -> None:
    lol = "a: &a [x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    assert rejection(lol)[0].startswith("anchors")


def test_not_utf8() -> None:
    message, line, col = rejection(b"a: 1\nb: \xff\n")
    assert message == "not UTF-8: byte 0xff cannot be decoded"
    assert (line, col) == (2, 4)


def test_byte_order_mark_is_accepted() -> None:
    assert load("\ufeffa: 1\n") == {"a": 1}


def test_size_cap() -> None:
    assert "at most" in rejection(b"a: " + b"x" * MAX_BYTES)[0]


def test_depth_cap() -> None:
    deep = "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2)
    assert "nesting deeper than 64" in rejection(f"a: {deep}\n")[0]
    fine = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load(f"a: {fine}\n") is not None


def test_empty_document_is_null() -> None:
    assert load("") is None
    assert load("# only a comment\n") is None


# YAML text may not hold control characters unescaped, nor libyaml read escaped surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
SCALARS = st.one_of(
    TEXT,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(VALUES)
def test_json_flow_documents_load_to_the_same_value(value: object) -> None:
    """JSON is YAML 1.2: any JSON document loads to the value it encodes.

    (Written without ``\\u`` escapes: libyaml does not read escaped surrogate pairs.)
    """
    assert load(json.dumps(value, ensure_ascii=False)) == value


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_input_raises_only_mirc_errors(data: bytes) -> None:
    try:
        load_yaml(data, "t.yaml")
    except MircError as exc:
        assert exc.diagnostics[0].span is not None
