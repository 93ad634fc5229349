"""The strict JSON reader mir.json goes through: RFC 8259 only, duplicates refused, positions."""

from __future__ import annotations

import pytest

from compiler.diagnostics import MircError
from compiler.interop.jsonfile import MAX_DEPTH, load_json


def test_values_and_positions() -> None:
    document = load_json(b'{\n  "a": [1, 2.5, -3e2, true, null],\n  "b\\u00e9": {"c": ""}\n}', "f")
    assert document.value == {"a": [1, 2.5, -300.0, True, None], "bé": {"c": ""}}
    assert document.span(("a", 1)).location == "f:2:12"
    assert document.span(("bé",), key=True).location == "f:3:3"
    assert document.span(("bé", "c")).location == "f:3:20"
    assert document.span(("missing", "x")).location == "f:1:1"


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (b"", "1:1", "empty file"),
        (b"\xef\xbb\xbf{}", "1:1", "byte-order mark"),
        (b'{"a": "\xff"}', "1:8", "not UTF-8"),
        (b'{"a": 1, "a": 2}', "1:10", "duplicate key 'a' (first at line 1, column 2)"),
        (b'{"x": {"a": 1, "a": 2}}', "1:16", "duplicate key 'a'"),
        (b'{"a": 1,}', "1:9", "trailing comma before '}'"),
        (b"[1, 2,]", "1:7", "trailing comma before ']'"),
        (b'{"a": NaN}', "1:7", "NaN and Infinity are not JSON numbers"),
        (b'{"a": -Infinity}', "1:7", "NaN and Infinity"),
        (b'{"a": 01}', "1:8", "expected ',' or '}'"),
        (b'{"a": 1e999}', "1:7", "too large"),
        (b'{"a": "\\ud800"}', "1:7", "lone surrogate"),
        (b'{"a": "x\ny"}', "1:9", "bad string: Invalid control character"),
        (b"{} {}", "1:4", "extra data"),
        (b"{'a': 1}", "1:2", "expected a string key"),
        (b'{"a" 1}', "1:6", "expected ':'"),
        (b"[" * (MAX_DEPTH + 2), "1:66", "nesting deeper than 64 levels"),
        (b"1" * 401, "1:1", "more than 400 digits"),
    ],
)
def test_rejections_are_positioned(data: bytes, where: str, message: str) -> None:
    with pytest.raises(MircError) as caught:
        load_json(data, "f.json")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.span is not None
    assert diagnostic.span.location == f"f.json:{where}"
    assert message in diagnostic.message
