"""Hypothesis strategies for Mecha recipes: any well-formed tree, and recipes sd-mecha can run."""

from __future__ import annotations

import functools

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

KEYS = st.builds(
    str.__add__,
    st.sampled_from("aZ_k"),
    st.text(st.sampled_from("az09_.-AZ"), max_size=7),
)
# Anything a string may hold (no control characters but tab, no line separators): mostly the
# characters that matter to the syntax, sometimes any character at all.
TEXT = st.text(st.sampled_from(' aZ09_.-/\\"=&#\té模\xa0\U0001f600'), max_size=10) | st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=4
)
COMMENTS = TEXT.map(lambda text: text.rstrip(" \t"))
SCALARS: st.SearchStrategy[Value] = st.one_of(
    TEXT.map(Str),
    st.integers(-(2**63), 2**63 - 1).map(Int),
    st.floats(allow_nan=False, allow_infinity=False).map(Float),
    st.booleans().map(Bool),
    st.just(Null()),
)


@functools.cache
def values(index: int) -> st.SearchStrategy[Value]:
    """A scalar, or a reference to one of the ``index`` earlier expressions."""
    if index == 0:
        return SCALARS
    return SCALARS | st.integers(0, index - 1).map(Ref)


@functools.cache
def keywords(index: int) -> st.SearchStrategy[tuple[Keyword, ...]]:
    pairs = st.dictionaries(KEYS, values(index), max_size=3)
    return pairs.map(lambda found: tuple(Keyword(k, v) for k, v in found.items()))


@functools.cache
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


# Model paths with quotes, backslashes, spaces and non-ASCII letters (but no '=': sd-mecha 1.1.8
# cannot read it inside a positional string).
PATHS = st.from_regex(r'[a-z]{1,6}(/[a-zA-Z0-9_ ."\\é模-]{1,8}){0,2}\.safetensors', fullmatch=True)
NUMBERS = st.floats(0, 1).map(Float) | st.integers(0, 3).map(Int)


def _model(path: str, space: str) -> Model:
    placement = (Keyword("model_config", Str("sdxl-sgm")), Keyword("merge_space", Str(space)))
    return Model(Str(path), (), placement)


def _alpha(draw: st.DrawFn, items: list[Item], name: str = "alpha") -> list[Keyword]:
    """Nothing (the default), a number or a reference to a new per-block dict."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return []
    if choice == 1:
        return [Keyword(name, draw(NUMBERS))]
    blocks = draw(st.lists(st.sampled_from(["BASE", "IN00", "OUT08"]), min_size=1, unique=True))
    items.append(Dict(tuple(Keyword(block, draw(NUMBERS)) for block in blocks)))
    return [Keyword(name, Ref(_count(items) - 1))]


def _count(items: list[Item]) -> int:
    return sum(not isinstance(item, Comment) for item in items)


@st.composite
def runnable_recipes(draw: st.DrawFn) -> Recipe:
    """Recipes sd-mecha deserializes: known methods, fitting arguments, agreeing merge spaces."""
    items: list[Item] = []
    spaces: dict[int, str] = {}
    for _ in range(draw(st.integers(1, 3))):
        spaces[_count(items)] = draw(st.sampled_from(["weight", "delta"]))
        items.append(_model(draw(PATHS), spaces[_count(items)]))
    for _ in range(draw(st.integers(1, 5))):
        weights = [i for i, s in spaces.items() if s == "weight"]
        deltas = [i for i, s in spaces.items() if s == "delta"]
        merge, space = draw(st.sampled_from(_MERGES))(draw, items, weights, deltas)
        if merge is not None:
            spaces[_count(items)] = space
            items.append(merge)
    return Recipe(tuple(items))


Pick = tuple[Merge | None, str]


def _two_alike(draw: st.DrawFn, items: list[Item], weights: list[int], deltas: list[int]) -> Pick:
    group, space = (weights, "weight") if weights and draw(st.booleans()) else (deltas, "delta")
    if not group:
        return None, ""
    method = draw(st.sampled_from(["weighted_sum", "slerp", "geometric_sum"]))
    a, b = draw(st.sampled_from(group)), draw(st.sampled_from(group))
    return Merge(Str(method), (Ref(a), Ref(b)), tuple(_alpha(draw, items))), space


def _difference(draw: st.DrawFn, items: list[Item], weights: list[int], deltas: list[int]) -> Pick:
    if not weights:
        return None, ""
    a, b = draw(st.sampled_from(weights)), draw(st.sampled_from(weights))
    return Merge(Str("subtract"), (Ref(a), Ref(b))), "delta"


def _add(draw: st.DrawFn, items: list[Item], weights: list[int], deltas: list[int]) -> Pick:
    if not (weights and deltas):
        return None, ""
    a, b = draw(st.sampled_from(weights)), draw(st.sampled_from(deltas))
    return Merge(Str("add_difference"), (Ref(a), Ref(b)), tuple(_alpha(draw, items))), "weight"


def _ties(draw: st.DrawFn, items: list[Item], weights: list[int], deltas: list[int]) -> Pick:
    if not deltas:
        return None, ""
    models = draw(st.lists(st.sampled_from(deltas), min_size=1, max_size=4))
    options = [Keyword("k", draw(NUMBERS)), Keyword("vote_sgn", Bool(draw(st.booleans())))]
    chosen = tuple(draw(st.lists(st.sampled_from(options), unique_by=lambda k: k.name)))
    return Merge(Str("ties_sum"), tuple(Ref(m) for m in models), chosen), "delta"


def _cast(draw: st.DrawFn, items: list[Item], weights: list[int], deltas: list[int]) -> Pick:
    source = draw(st.sampled_from([*weights, *deltas]))
    dtype = Keyword("dtype", draw(st.sampled_from([Str("float16"), Str("bfloat16"), Null()])))
    space = "weight" if source in weights else "delta"
    return Merge(Str("cast"), (Ref(source),), (dtype,)), space


_MERGES = [_two_alike, _difference, _add, _ties, _cast]
