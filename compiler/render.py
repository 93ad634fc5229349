"""The render stage: planned files → text, through the Jinja2 templates in ``templates/``.

One environment factory: ``StrictUndefined`` (a missing value is an error, never an empty
string), ``keep_trailing_newline``, autoescape off (nothing here is HTML), and the filters that
are the only way a spec value may reach generated source (RELIABILITY rule 6):

* ``pyliteral`` — any plain value (str/int/float/bool/None and lists, tuples and dicts of them)
  as an ASCII Python literal laid out the way ``ruff format`` lays it out;
* ``pyident`` — a name checked against an allow-list pattern;
* ``pycomment`` — one escaped ASCII line for a ``#`` comment;
* ``shellword`` — an integer, or a string quoted as one POSIX shell word (``shlex.quote``);
* ``canonical_json`` — sorted keys, two-space indent, ASCII only;
* ``mdtext`` — one line of Markdown text (also safe in a table cell or inline HTML): every
  character Markdown or HTML would read as markup written as a character reference;
* ``mdblock`` — a fenced code block whose fence is longer than any backtick run in the text.

Rendering does not check the Python it makes: ``mirc build`` has ruff parse every fresh ``.py``
file before it accepts the tree, and ruff's parser refuses what ``compile`` refuses, syntax and
module-level misuse alike.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from pathlib import Path
from typing import Any

import jinja2

from compiler import jsontext
from compiler.resources import data_dir

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
LINE_LENGTH = 100  # the project's ruff line-length: generated files pass ruff unchanged


class RenderError(Exception):
    """A template or a value could not be rendered safely."""


def pyliteral(value: Any, indent: int = 0) -> str:
    """``value`` as Python source that evaluates to an equal value; refuses anything else.

    The layout is the one ``ruff format`` keeps, so that generated files pass
    ``ruff format --check``: a collection stays on one line when it fits, else has one item per
    line and a trailing comma (always, at the top level, whose line's start is not known here);
    strings are ASCII, double-quoted unless that needs more escapes; a string too long for its
    line is split into a parenthesised implicit concatenation (dict keys never are: they are
    names). ``indent`` is the indentation of the line the literal starts on (a string at the top
    level is assumed to start that line).

    Each value is written by construction from its type (plain values only, checked on the way),
    so the text evaluates back to ``value``; a property test holds it to that, and ``mirc build``
    has ruff parse every file the literal lands in before it is accepted.
    """
    flats: dict[int, str] = {}
    _flat(value, flats)
    return _literal(value, indent, None, 0, flats)


def _literal(value: Any, indent: int, start: int | None, tail: int, flats: dict[int, str]) -> str:
    """``value`` beginning at column ``start`` (None: unknown) of a line indented ``indent``,
    followed by ``tail`` more characters on that line; ``flats`` holds each collection's
    one-line form (by ``id``), written once by :func:`_flat`."""
    if isinstance(value, str):
        return _string(value, indent, indent if start is None else start, tail)
    flat = flats.get(id(value))
    if flat is None:  # not a collection
        return _scalar(value)
    if start is not None and start + len(flat) + tail <= LINE_LENGTH:
        return flat
    if isinstance(value, dict):
        items = [(_key(k) + ": ", v) for k, v in value.items()]
        return _collection(items, "{", "}", indent, flats)
    brackets = "[]" if isinstance(value, list) else "()"
    return _collection([("", v) for v in value], brackets[0], brackets[1], indent, flats)


def _flat(value: Any, flats: dict[int, str]) -> str:
    """``value`` on one line, recording each collection's form in ``flats``; refuses anything
    that is not a plain value."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{_key(k)}: {_flat(v, flats)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join([_flat(v, flats) for v in value]) + "]"
    elif isinstance(value, tuple):
        items = [_flat(v, flats) for v in value]
        text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    else:
        return _scalar(value)
    flats[id(value)] = text
    return text


def _scalar(value: Any) -> str:
    """None, a bool, an int or a finite float as source (subclasses as their base type)."""
    if value is None or isinstance(value, bool):
        return "True" if value is True else "False" if value is False else "None"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"non-finite float {value!r} has no literal")
        return float.__repr__(value).replace("e+", "e")  # ruff writes 1e16, not 1e+16
    raise RenderError(f"{type(value).__name__} is not a plain value")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _quote(key)
    if isinstance(key, int):
        return _scalar(key)
    raise RenderError(f"dict key {key!r} is not a string or integer")


def _collection(
    items: list[tuple[str, Any]], opening: str, closing: str, indent: int, flats: dict[int, str]
) -> str:
    if not items:
        return opening + closing
    inner = " " * (indent + 4)
    lines = [opening]
    for head, item in items:
        start = len(inner) + len(head)
        lines.append(inner + head + _literal(item, indent + 4, start, 1, flats) + ",")
    lines.append(" " * indent + closing)
    return "\n".join(lines)


def _string(value: str, indent: int, start: int, tail: int) -> str:
    text = _quote(value)
    if start + len(text) + tail <= LINE_LENGTH:
        return text
    inner = " " * (indent + 4)
    width = LINE_LENGTH - len(inner)
    parts = [text] if len(text) <= width else [_quote(p) for p in _chunks(value, width)]
    return "(\n" + "".join(f"{inner}{part}\n" for part in parts) + " " * indent + ")"


def _chunks(value: str, width: int) -> list[str]:
    """``value`` cut after whitespace (or anywhere, for a long word) into pieces whose quoted
    form fits in ``width`` columns."""
    chunks = [""]
    for word in re.findall(r"\S*\s*", value):
        for char in word if len(_quote(word)) > width else [word]:
            if chunks[-1] and len(_quote(chunks[-1] + char)) > width:
                chunks.append("")
            chunks[-1] += char
    return chunks


@functools.lru_cache(maxsize=1 << 16)  # names and reasons recur across a build's files
def _quote(text: str) -> str:
    """An ASCII string literal; double quotes unless the text holds more of them than of
    single quotes (ruff's rule)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'  # nothing to escape: the common case
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = text.translate(_ESCAPES[quote]).encode("ascii", "backslashreplace").decode("ascii")
    return quote + body + quote


def _escapes(quote: str) -> dict[int, str]:
    """What ``str.translate`` replaces: control characters, the backslash and the quote (the
    rest of non-ASCII is escaped by the ``backslashreplace`` error handler)."""
    table = {code: ascii(chr(code))[1:-1] for code in (*range(32), 127)}
    table.update({ord("\\"): "\\\\", ord(quote): "\\" + quote})
    return table


_ESCAPES = {quote: _escapes(quote) for quote in ("'", '"')}


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
    return jsontext.dumps(value, indent=2, sort_keys=True, allow_nan=False)


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
        auto_reload=False,  # one environment per templates folder and process: no stat per file
    )
    env.filters.update(
        pyliteral=pyliteral,
        pyident=pyident,
        pycomment=pycomment,
        shellword=shellword,
        canonical_json=canonical_json,
        mdtext=mdtext,
        mdblock=mdblock,
    )
    return env


def render(template: str, context: dict[str, Any], templates: Path | None = None) -> str:
    """Render ``template`` with ``context``."""
    try:
        return environment(templates).get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        raise RenderError(f"{template}: {exc}") from exc
