"""The render stage's filters: the only way a spec value reaches generated source."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.render import RenderError, pycomment, pyident, pyliteral, shellword

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


@settings(max_examples=300)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.text(max_size=300)
        | st.sampled_from(NASTY)
        | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3)
        ),
        max_leaves=12,
    ),
    st.integers(0, 40),
)
def test_pyliteral_round_trips(value: object, indent: int) -> None:
    """pyliteral writes each value from its type without evaluating it back: this property
    (and the compile of every rendered file) is what holds it to its word."""
    text = pyliteral(value, indent)
    assert text.isascii()
    assert ast.literal_eval(text) == value
    assert type(ast.literal_eval(text)) is type(value)


def test_pyliteral_refuses_non_plain_values() -> None:
    for bad in (float("nan"), float("inf"), object(), {1.5: "x"}, {"a": {1, 2}}, [b"x"]):
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


RUFF = ("ruff", "--config", str(Path(__file__).resolve().parents[1] / "pyproject.toml"))


def ruff_problems(source: str, tmp_path: Path) -> list[str]:
    """What ``ruff format --check`` and ``ruff check`` say of ``source`` (nothing when clean)."""
    path = tmp_path / "generated.py"
    path.write_text(source, encoding="ascii")
    return ruff_path_problems(path)


def ruff_path_problems(path: Path) -> list[str]:
    """What ``ruff format --check`` and ``ruff check`` say of a file or folder."""
    problems = []
    for command in (("format", "--check", "--diff"), ("check", "--no-cache")):
        argv = [RUFF[0], *command, *RUFF[1:], str(path)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            problems.append(done.stdout + done.stderr)
    return problems


def test_literals_are_laid_out_as_ruff_formats_them(tmp_path: Path) -> None:
    """Around the line-length edge: strings that fit, that fit alone in parentheses, and that
    must be split, at several depths, after keys and as list items, with awkward characters."""
    bodies = ("ab " * 60, "x" * 200, "a'b\"c " * 30, "\u2028z\\ " * 40, 'say "hi" ' * 20)
    statements = []
    for depth in range(3):
        for key in ("", "k", "a_longer_key"):
            for length in range(80, 115):
                for body in bodies:
                    value: Any = body[:length]
                    for _ in range(depth):
                        value = [value]
                    value = {key: value} if key else [value]
                    statements.append(f"X{len(statements)} = {pyliteral(value)}\n")
    source = "".join(statements)
    assert source.isascii()
    assert ruff_problems(source, tmp_path) == []


# Keys are names in generated files (variants, targets, keyword arguments): never split, so long
# keys are left out here.
NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=20)
PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=150)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(PLAIN, min_size=20, max_size=40))
def test_any_plain_value_passes_ruff_unchanged(tmp_path: Path, values: list[Any]) -> None:
    source = "".join(f"X{i} = {pyliteral([value])}\n" for i, value in enumerate(values))
    assert ruff_problems(source, tmp_path) == []


def test_shell_words_are_quoted_or_refused() -> None:
    assert shellword(8) == "8"
    assert shellword("cpu_2.py") == "cpu_2.py"
    assert shellword("a b; rm -rf /") == "'a b; rm -rf /'"
    for bad in (True, None, 1.5, "", ["x"]):
        with pytest.raises(RenderError):
            shellword(bad)
