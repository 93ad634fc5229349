"""Hub repo ids: the labelled error table, the hub's rules at their columns, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.lang.repo import REPO_ERRORS, RepoId, parse_repo


def test_parts() -> None:
    assert parse_repo("black-forest-labs/FLUX.1-dev") == RepoId("FLUX.1-dev", "black-forest-labs")
    assert parse_repo("gpt2") == RepoId("gpt2")
    assert str(parse_repo("tencent-hunyuan/hunyuandiT-v1.2-diffusers")).endswith("v1.2-diffusers")


@pytest.mark.parametrize(
    ("label", "example"), [(label, ex) for label, exs in REPO_ERRORS.items() for ex in exs]
)
def test_repo_error_table(label: str, example: str) -> None:
    with pytest.raises(MircError) as info:
        parse_repo(example)
    assert info.value.diagnostics[0].message == label


BAD_REPOS = {
    "../x": ("'..' is not allowed in a repo id (it is a name, not a path)", 1),
    "org/..": ("'..' is not allowed in a repo id (it is a name, not a path)", 5),
    "org/my model": ("whitespace is not allowed in a repo id", 7),
    "org\\x": ("a repo id is ORG/NAME, not a path; '\\' is not allowed", 4),
    "-org/x": ("a repo id part cannot start with '-' or '.'", 1),
    "org/x.": ("a repo id part cannot end with '-' or '.'", 6),
    "org/a--b": ("'--' is not allowed in a repo id", 6),
    "org/" + "x" * 97: ("a repo id part is at most 96 characters; this one has 97", 101),
    "x" * 300: ("repo id is 300 characters long; at most 193 allowed", 194),
}


@pytest.mark.parametrize(("repo", "expected"), BAD_REPOS.items())
def test_bad_repo_ids_are_rejected_with_their_column(repo: str, expected: tuple[str, int]) -> None:
    with pytest.raises(MircError) as info:
        parse_repo(repo)
    diagnostic = info.value.diagnostics[0]
    assert (diagnostic.message, diagnostic.span.col) == expected  # type: ignore[union-attr]


PART = st.from_regex(r"[A-Za-z0-9]{1,8}([._-][A-Za-z0-9]{1,8}){0,4}", fullmatch=True)


@given(st.builds(RepoId, PART, st.none() | PART))
def test_format_then_parse_is_identity(repo: RepoId) -> None:
    assert parse_repo(str(repo)) == repo


@given(st.text(alphabet="ab./-_ \\\n9", max_size=30) | st.text(max_size=30))
def test_only_mirc_errors_escape(text: str) -> None:
    try:
        parse_repo(text)
    except MircError as exc:
        assert exc.diagnostics and exc.diagnostics[0].span is not None
