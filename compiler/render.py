"""The render stage: planned files → text, through the Jinja2 templates in ``templates/``.

One environment factory: ``StrictUndefined`` (a missing value is an error, never an empty
string), ``keep_trailing_newline``, autoescape off (nothing here is HTML), and the filters that
are the only way a spec value may reach generated source (RELIABILITY rule 6):

* ``pyliteral`` — any plain value as a Python literal (``repr`` of str/int/float/bool/None and
  of lists, tuples and dicts of them), checked to parse back to the same value;
* ``pyblock`` — the same value laid out as ``ruff format`` writes it (one item per line where a
  container does not fit, long strings split at spaces), for data too large for one line;
* ``pyident`` — a name checked against an allow-list pattern;
* ``pycomment`` — one escaped ASCII line for a ``#`` comment;
* ``shellword`` — an integer, or a string quoted as one POSIX shell word (``shlex.quote``);
* ``canonical_json`` — sorted keys, two-space indent, ASCII only.

Every rendered ``.py`` file is parsed with ``ast.parse`` before it is accepted.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import shlex
from pathlib import Path
from typing import Any

import jinja2

from compiler.resources import data_dir

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# Generated Python is laid out for the project's ruff settings, so that it is format-clean as is.
LINE_LENGTH = 100
INDENT = "    "


class RenderError(Exception):
    """A template or a value could not be rendered safely."""


def pyliteral(value: Any) -> str:
    """``value`` as Python source that evaluates to an equal value; refuses anything else."""
    _check_plain(value)
    text = repr(value)
    if ast.literal_eval(text) != value:
        raise RenderError(f"value does not survive as a literal: {text[:80]}")
    return text


def _check_plain(value: Any) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"non-finite float {value!r} has no literal")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise RenderError(f"dict key {key!r} is not a string or integer")
            _check_plain(item)
        return
    raise RenderError(f"{type(value).__name__} is not a plain value")


def pyblock(value: Any) -> str:
    """``value`` as a Python literal laid out the way ``ruff format`` leaves it unchanged.

    A non-empty top-level container is always one item per line (its trailing comma keeps it so);
    a nested one stays on one line when it fits. A string too long for its line is split at
    spaces into implicitly concatenated parts (parenthesised as a dict value).
    """
    _check_plain(value)
    lines = _layout(value, 0, "", "", top=True)
    text = "\n".join(lines)
    if ast.literal_eval(text) != value:
        raise RenderError(f"value does not survive as a literal block: {text[:80]}")
    return text


def _layout(value: Any, depth: int, prefix: str, suffix: str, top: bool = False) -> list[str]:
    pad = INDENT * depth
    flat = _flat(value)
    container = isinstance(value, dict | list | tuple) and len(value) > 0
    if top and not container:
        return [flat]  # a bare value after ``NAME = `` cannot be split without parentheses
    if not (top and container) and len(pad + prefix + flat + suffix) <= LINE_LENGTH:
        return [pad + prefix + flat + suffix]
    if isinstance(value, dict) and value:
        items = [
            line for k, v in value.items() for line in _layout(v, depth + 1, _flat(k) + ": ", ",")
        ]
        return [pad + prefix + "{", *items, pad + "}" + suffix]
    if isinstance(value, list | tuple) and value:
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        items = [line for v in value for line in _layout(v, depth + 1, "", ",")]
        return [pad + prefix + opening, *items, pad + closing + suffix]
    if isinstance(value, str):
        return _split_string(value, depth, prefix, suffix)
    return [pad + prefix + flat + suffix]


def _flat(value: Any) -> str:
    """One-line source of a plain value as ruff writes it: double quotes, ``1e16`` not ``1e+16``."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float):
        return repr(value).replace("e+", "e")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_flat(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _string(value: str) -> str:
    """A string literal in ruff's preferred quotes: double, unless that needs more escapes."""
    quote = "'" if value.count('"') > value.count("'") else '"'
    out = []
    for ch in value:
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return quote + "".join(out) + quote


def _split_string(value: str, depth: int, prefix: str, suffix: str) -> list[str]:
    pad = INDENT * depth
    if not prefix:
        parts = _string_parts(value, LINE_LENGTH - len(pad) - len(suffix))
        return [pad + part for part in parts[:-1]] + [pad + parts[-1] + suffix]
    inner = pad + INDENT
    parts = _string_parts(value, LINE_LENGTH - len(inner))
    return [pad + prefix + "(", *(inner + part for part in parts), pad + ")" + suffix]


def _string_parts(value: str, width: int) -> list[str]:
    """``value`` cut after spaces into literals of at most ``width`` characters where possible."""
    words = re.findall(r"\s*\S+\s*", value) or [value]
    parts: list[str] = []
    current = ""
    for word in words:
        if current and len(_string(current + word)) > width:
            parts.append(_string(current))
            current = ""
        current += word
    parts.append(_string(current))
    return parts


def pyident(value: Any) -> str:
    """``value`` if it is a short Python identifier (and not a keyword); refuses anything else."""
    import keyword

    text = str(value)
    if not IDENTIFIER.fullmatch(text) or keyword.iskeyword(text):
        raise RenderError(f"{text[:40]!r} is not an allowed identifier")
    return text


def pycomment(value: Any) -> str:
    """One line of ASCII for after a ``#``: non-ASCII and control characters escaped."""
    text = str(value).encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def shellword(value: Any) -> str:
    """``value`` as one shell word: an integer as is, a string quoted; refuses anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return shlex.quote(value)
    raise RenderError(f"{type(value).__name__} {value!r:.40} is not a shell word")


def canonical_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)


@functools.cache
def environment(templates: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment every generated file is rendered with."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pyliteral=pyliteral,
        pyblock=pyblock,
        pyident=pyident,
        pycomment=pycomment,
        shellword=shellword,
        canonical_json=canonical_json,
    )
    return env


def render(template: str, context: dict[str, Any], templates: Path | None = None) -> str:
    """Render ``template`` with ``context``; a ``.py`` result must parse."""
    try:
        text = environment(templates).get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        raise RenderError(f"{template}: {exc}") from exc
    if template.endswith(".py.j2"):
        try:
            ast.parse(text)
        except SyntaxError as exc:
            raise RenderError(f"{template}: rendered Python does not parse: {exc}") from exc
    return text
