"""Indented JSON text, byte for byte what ``json.dumps(value, indent=…, ensure_ascii=True)``
writes, at about half its cost.

The standard library's C encoder only runs without an indent; with one, ``json`` falls back to
a pure-Python encoder built from generators. ``mirc build`` writes megabytes of indented JSON
(a parameters file per variant, ``mir.json``), so this walks plain data (dict, list, tuple,
str, int, float, bool, None) with one function call per container and lets the C functions
quote strings and format numbers. Anything else — a subclass, a non-string key — goes to
``json.dumps`` itself, so the text is always the standard library's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any


class _Unusual(Exception):
    """A value this fast path leaves to ``json.dumps``."""


def dumps(value: Any, indent: int = 2, sort_keys: bool = False, allow_nan: bool = True) -> str:
    """``json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=True,
    allow_nan=allow_nan)``, the same text."""
    try:
        return _writer(" " * indent, sort_keys, allow_nan)(value, "\n")
    except _Unusual:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan)


def _writer(step: str, sort_keys: bool, allow_nan: bool) -> Callable[[Any, str], str]:
    """The function that writes a value whose first line continues a line and whose other
    lines start with ``newline`` (a line break and the indentation of the line it began on);
    closures, as this runs once per container, and scalars written in the loop that meets them
    (most values are)."""
    quote = encode_basestring_ascii
    floats = json.JSONEncoder(allow_nan=allow_nan).encode

    def scalar(value: Any) -> str:
        kind = type(value)
        if kind is int:
            return int.__repr__(value)
        if value is None or kind is bool:
            return "true" if value is True else "false" if value is False else "null"
        if kind is float:
            return floats(value)  # NaN and the infinities by json's rules
        raise _Unusual

    def text(value: Any, newline: str) -> str:
        kind = type(value)
        if kind is dict:
            return mapping(value, newline) if value else "{}"
        if kind is list or kind is tuple:
            if not value:
                return "[]"
            inner = newline + step
            return "[" + inner + ("," + inner).join([text(v, inner) for v in value]) + newline + "]"
        return quote(value) if kind is str else scalar(value)

    def mapping(value: dict[Any, Any], newline: str) -> str:
        inner = newline + step
        items = []
        try:  # keys that are not strings: json's own rules turn them into strings
            for key in sorted(value) if sort_keys else value:
                item = value[key]
                kind = type(item)
                if kind is str:
                    items.append(quote(key) + ": " + quote(item))
                elif kind is dict or kind is list or kind is tuple:
                    items.append(quote(key) + ": " + text(item, inner))
                else:
                    items.append(quote(key) + ": " + scalar(item))
        except TypeError as exc:
            raise _Unusual from exc
        return "{" + inner + ("," + inner).join(items) + newline + "}"

    return text
