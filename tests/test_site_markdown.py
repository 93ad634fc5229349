"""The Markdown filters of the render stage: spec text reaches a page as text, never markup."""

from __future__ import annotations

import html
import re

import markdown
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.render import RenderError, mdblock, mdtext

# The extensions site/mkdocs.yml turns on that read inline text.
EXTENSIONS = ["tables", "attr_list", "md_in_html", "toc", "admonition", "pymdownx.details"]
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")))


def convert(source: str) -> str:
    return markdown.Markdown(extensions=EXTENSIONS).convert(source)


def shown(rendered: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", rendered)).split())


def visible(text: str) -> str:
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


@pytest.mark.parametrize(
    "text",
    [
        "FLUX.1 [dev]",
        "<script>alert(1)</script>",
        "*bold* _it_ `code` ~~x~~",
        "a | b",
        "[link](https://example.com)",
        "# heading",
        "- item",
        "1. first",
        "{ #id .class }",
        "&amp; &#60;",
        "back\\slash",
        '"quoted" title',
    ],
)
def test_markup_is_shown_as_text(text: str) -> None:
    rendered = convert(mdtext(text))
    assert shown(rendered) == text
    assert "<script" not in rendered and "<a " not in rendered and "<h1" not in rendered


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_renders_as_itself_in_a_paragraph(text: str) -> None:
    assert shown(convert("x " + mdtext(text))) == visible("x " + text)
    assert shown(convert(mdtext(text))) == visible(text)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_stays_in_its_table_cell(text: str) -> None:
    rendered = convert(f"| a | b |\n| --- | --- |\n| {mdtext(text)} | z |\n")
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.S)
    assert len(cells) == 2 and shown(cells[0]) == visible(text)


def test_code_block_fence_outlasts_the_text() -> None:
    text = "a\n```\nb\n`````\n"
    block = mdblock(text, "text")
    assert block.startswith("``````text\n") and block.endswith("\n``````")
    rendered = markdown.Markdown(extensions=["pymdownx.superfences"]).convert(block)
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == text.strip()
    with pytest.raises(RenderError):
        mdblock("x", "py thon")
