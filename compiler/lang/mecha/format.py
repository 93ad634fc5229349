"""Writing a recipe in sd-mecha's dialect, byte-stable: ``format(parse(format(r))) == format(r)``.

The output is what ``sd_mecha.deserialize`` reads and what ``sd_mecha.serialize`` writes, checked
against sd-mecha 1.1.8: the ``version 0.1.0`` header on the first line; one expression or
comment per line, single spaces, no indentation; no blank lines and no newline after the last
line (sd-mecha rejects an empty line, and a final newline makes one); numbers as Python's
``str`` prints them; strings in double quotes with ``\\`` and ``"`` escaped. The seed's ``call``
becomes ``merge``. Comments are kept, in order; any above the header move below it. Arguments
stay as written: formatting never adds defaults or renumbers references.
"""

from __future__ import annotations

from compiler.lang.mecha.ast import (
    FORMAT_VERSION,
    Bool,
    Comment,
    Dict,
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


def format_recipe(recipe: Recipe) -> str:
    """The recipe in sd-mecha's dialect, without a final newline (sd-mecha reads none)."""
    lines = [f"version {FORMAT_VERSION}"]
    lines.extend(format_item(item) for item in recipe.items)
    return "\n".join(lines)


def format_item(item: Item) -> str:
    """One line of the recipe."""
    if isinstance(item, Comment):
        return f"#{item.text}"
    if isinstance(item, Model):
        head = ["model", format_value(item.path)]
    elif isinstance(item, Merge):
        head = ["merge", format_value(item.method)]
    elif isinstance(item, Literal):
        head = ["literal"]
    else:
        head = ["dict"]
    return " ".join(head + _arguments(item))


def _arguments(item: Model | Merge | Literal | Dict) -> list[str]:
    return [format_value(v) for v in item.args] + [format_keyword(k) for k in item.kwargs]


def format_keyword(keyword: Keyword) -> str:
    return f"{keyword.name}={format_value(keyword.value)}"


def format_value(value: Value) -> str:
    """A value as sd-mecha's serializer writes it."""
    if isinstance(value, Str):
        return format_string(value.value)
    if isinstance(value, Ref):
        return f"&{value.index}"
    if isinstance(value, Bool):
        return "true" if value.value else "false"
    if isinstance(value, Null):
        return "null"
    if isinstance(value, Float):
        return str(float(value.value))
    assert isinstance(value, Int)
    return str(int(value.value))


def format_string(text: str) -> str:
    """``text`` quoted, escaping backslashes and quotes the way sd-mecha's serializer does."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
