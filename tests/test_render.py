"""The render stage's filters: the only way a spec value reaches generated source."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.render import RenderError, pycomment, pyident, pyliteral

NASTY = [
    'a"b',
    "a'b",
    "'''",
    '"""',
    "line\nbreak",
    "lone\rcarriage",
    "brace {x} {{y}}",
    "back\\slash",
    "sep\u2028line",
    "para\u2029graph",
    "nul\x00byte",
    "__import__('os').system('touch /tmp/pwned')",
]


@pytest.mark.parametrize("text", NASTY)
def test_strings_become_inert_literals(text: str) -> None:
    source = f"VALUE = {pyliteral(text)}\n"
    tree = ast.parse(source)
    assert ast.literal_eval(tree.body[0].value) == text  # type: ignore[attr-defined]


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_pyliteral_round_trips(value: object) -> None:
    assert ast.literal_eval(pyliteral(value)) == value


def test_pyliteral_refuses_non_plain_values() -> None:
    for bad in (float("nan"), float("inf"), object(), {1.5: "x"}, {"a": {1, 2}}):
        with pytest.raises(RenderError):
            pyliteral(bad)


def test_identifiers_are_allow_listed() -> None:
    assert pyident("StableDiffusionXLPipeline") == "StableDiffusionXLPipeline"
    for bad in ("os.system", "a b", "1abc", "class", "x" * 101, "a\nb", "é"):
        with pytest.raises(RenderError):
            pyident(bad)


@pytest.mark.parametrize("text", NASTY)
def test_comments_stay_on_one_ascii_line(text: str) -> None:
    line = pycomment(text)
    assert line.isascii() and "\n" not in line and "\r" not in line
    assert len(f"# {line}\n".splitlines()) == 1
