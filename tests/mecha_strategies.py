"""Hypothesis strategies for Mecha recipes: any well-formed tree, and recipes sd-mecha can run."""

from __future__ import annotations

from hypothesis import strategies as st

from compiler.lang.mecha.ast import (
    Bool,
    Comment,
    Dict,
    Expression,
    Float,
    Int,
    Item,
    Keyword,
    Literal,
    Merge,
    Model,
    Null,
    Recipe,
    Ref,
    Str,
    Value,
)

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
# Anything a string may hold: no control characters but tab, no line separators.
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.just("\t"), max_size=12
)
COMMENTS = TEXT.map(lambda text: text.rstrip(" \t"))
SCALARS: st.SearchStrategy[Value] = st.one_of(
    TEXT.map(Str),
    st.integers(-(2**63), 2**63 - 1).map(Int),
    st.floats(allow_nan=False, allow_infinity=False).map(Float),
    st.booleans().map(Bool),
    st.just(Null()),
)


def values(index: int) -> st.SearchStrategy[Value]:
    """A scalar, or a reference to one of the ``index`` earlier expressions."""
    if index == 0:
        return SCALARS
    return SCALARS | st.integers(0, index - 1).map(Ref)


def keywords(index: int) -> st.SearchStrategy[tuple[Keyword, ...]]:
    pairs = st.dictionaries(KEYS, values(index), max_size=3)
    return pairs.map(lambda found: tuple(Keyword(k, v) for k, v in found.items()))


def expressions(index: int) -> st.SearchStrategy[Expression]:
    args = st.lists(values(index), max_size=3).map(tuple)
    return st.one_of(
        st.builds(Model, TEXT.map(Str), args, keywords(index)),
        st.builds(Merge, TEXT.map(Str), args, keywords(index)),
        st.builds(Literal, args, keywords(index)),
        st.builds(Dict, keywords(index)),
    )


@st.composite
def recipes(draw: st.DrawFn, max_expressions: int = 6) -> Recipe:
    """Any well-formed recipe tree (not necessarily one that passes the checks)."""
    items: list[Item] = []
    for index in range(draw(st.integers(1, max_expressions))):
        if draw(st.integers(0, 3)) == 0:
            items.append(Comment(draw(COMMENTS)))
        items.append(draw(expressions(index)))
    if draw(st.booleans()):
        items.append(Comment(draw(COMMENTS)))
    return Recipe(tuple(items))
