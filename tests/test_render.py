"""The render stage's filters: the only way a spec value reaches generated source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.render import RenderError, pyblock, pycomment, pyident, pyliteral, shellword
from tests.conftest import ROOT

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


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=30), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(PLAIN)
def test_pyblock_round_trips(value: object) -> None:
    assert ast.literal_eval(pyblock(value)) == value


def block_sample() -> dict[str, object]:
    reason = "largest power of two ≤ 4 per device that fits (1.2 GiB); " * 3
    return {
        "floats": [1e-05, 1e16, -0.0, 2.5e300, 0.1],
        "nasty": NASTY,
        "short": {"a": [1, 2], "b": None, "c": True, "t": (1,), "e": {}},
        "variants": {
            "base": {
                "reason": reason,
                "decisions": [{"value": 2, "reason": reason}, reason],
                "word": "x" * 150,
                'mixed quotes \'a\' "b" "c"': 'it\'s "quoted" ' * 10,
            }
        },
    }


def test_pyblock_is_what_ruff_format_writes(tmp_path: Path) -> None:
    source = f"SPEC = {pyblock(block_sample())}\n"
    path = tmp_path / "spec.py"
    path.write_text(source, encoding="utf-8")
    config = str(ROOT / "pyproject.toml")
    for command in (["format", "--check"], ["check", "--select", "E501"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--config", config, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr + source
    assert ast.literal_eval(source.split("=", 1)[1].strip()) == block_sample()


def test_shell_words_are_quoted_or_refused() -> None:
    assert shellword(8) == "8"
    assert shellword("cpu_2.py") == "cpu_2.py"
    assert shellword("a b; rm -rf /") == "'a b; rm -rf /'"
    for bad in (True, None, 1.5, "", ["x"]):
        with pytest.raises(RenderError):
            shellword(bad)
