"""The render stage: planned files → text, through the Jinja2 templates in ``templates/``.

One environment factory: ``StrictUndefined`` (a missing value is an error, never an empty
string), ``keep_trailing_newline``, autoescape off (nothing here is HTML), and the filters that
are the only way a spec value may reach generated source (RELIABILITY rule 6):

* ``pyliteral`` — any plain value as a Python literal (``repr`` of str/int/float/bool/None and
  of lists, tuples and dicts of them), checked to parse back to the same value;
* ``pyident`` — a name checked against an allow-list pattern;
* ``pycomment`` — one escaped ASCII line for a ``#`` comment;
* ``canonical_json`` — sorted keys, two-space indent, ASCII only;
* ``mdtext`` — one line of Markdown text (also safe in a table cell or inline HTML): every
  character Markdown or HTML would read as markup written as a character reference;
* ``mdblock`` — a fenced code block whose fence is longer than any backtick run in the text.

Every rendered ``.py`` file is parsed with ``ast.parse`` before it is accepted.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
from pathlib import Path
from typing import Any

import jinja2

from compiler.resources import data_dir

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


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


def canonical_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)


# What Markdown (with tables, attribute lists and inline HTML) reads as markup anywhere in a line.
MARKDOWN_SPECIAL = {ch: f"&#{ord(ch)};" for ch in '&<>\\`*_[]{}|#!"'}
# ... and at the start of a line (after at most one space): list items, rules, ordered lists.
LINE_START = re.compile(r" ?(?:[-+]|[0-9]+[.)])")


def mdtext(value: Any) -> str:
    """``value`` as one line of inert Markdown text, safe in a paragraph, a table cell or inline
    HTML: markup characters become character references, each whitespace run one space and
    control characters (which no page can show) are dropped, so it renders as the text it was
    given."""
    shown = "".join(ch for ch in str(value) if ch.isprintable() or ch.isspace())
    escaped = "".join(MARKDOWN_SPECIAL.get(ch, ch) for ch in re.sub(r"\s+", " ", shown))
    if LINE_START.match(escaped):
        at = 1 if escaped.startswith(" ") else 0
        escaped = f"{escaped[:at]}&#{ord(escaped[at])};{escaped[at + 1 :]}"
    return escaped


def mdblock(value: Any, language: str = "text") -> str:
    """``value`` as a fenced code block (no trailing newline) that no line of it can close."""
    if not IDENTIFIER.fullmatch(language.replace("-", "_")):
        raise RenderError(f"{language[:40]!r} is not a code block language")
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


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
        pyliteral=pyliteral, pyident=pyident, pycomment=pycomment, canonical_json=canonical_json
    )
    env.filters.update(mdtext=mdtext, mdblock=mdblock)
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
