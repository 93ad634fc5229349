"""``compiler.jsontext.dumps``: the text ``json.dumps`` writes with an indent, byte for byte."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.jsontext import dumps

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
KEYS = st.text() | st.integers() | st.booleans() | st.none()
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(KEYS, inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(VALUES, st.sampled_from([2, 4]), st.booleans())
def test_same_text_as_json_dumps(value: Any, indent: int, sort_keys: bool) -> None:
    try:
        expected = json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=True)
    except TypeError:  # keys of mixed types cannot be sorted: the same error either way
        with pytest.raises(TypeError):
            dumps(value, indent=indent, sort_keys=sort_keys)
        return
    assert dumps(value, indent=indent, sort_keys=sort_keys) == expected


def test_non_finite_numbers_and_unusual_types_follow_json() -> None:
    value = {"a": [math.nan, math.inf, -math.inf], "b": {1: "x", None: [], "": {}}}
    assert dumps(value, indent=4) == json.dumps(value, indent=4)
    with pytest.raises(ValueError, match="Out of range float values"):
        dumps([math.inf], allow_nan=False)

    class Name(str):
        pass

    odd = {"s": Name("x"), Name("k"): [1.5, True]}
    assert dumps(odd, sort_keys=True) == json.dumps(odd, indent=2, sort_keys=True)
    with pytest.raises(TypeError):
        dumps({"x": {1, 2}})
