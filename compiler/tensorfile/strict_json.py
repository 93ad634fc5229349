"""JSON exactly as strict as serde_json, the parser behind the safetensors reader.

Python's ``json`` accepts NaN and Infinity, keeps the last of two equal keys, reads integers of
any size and nests until the interpreter's recursion limit; serde_json does none of that. The
decoder here adds hooks for those differences, and :func:`find_problem` walks the text token by
token to say where a problem is (the hooks see values, not positions). The walker also checks the
two rules no hook sees: nesting depth and escapes that decode to an unpaired surrogate. The
general reader uses :func:`scan_value` for the values it does not read by type: those of
unknown keys in a tensor entry.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

# serde_json refuses to enter a 128th nested array or object.
MAX_DEPTH = 127
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1

# A \uD800-\uDFFF escape: the text may hold an unpaired surrogate.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

_TOKEN = re.compile(
    r'(?P<string>"[^"\\]*(?:\\.[^"\\]*)*")(?P<key>[ \t\n\r]*:)?'
    r"|(?P<open>[{\[])|(?P<close>[}\]])|(?P<constant>NaN|-?Infinity)"
    r"|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
)


class JsonProblem(Exception):
    """Text that is not strict JSON; ``pos`` is a character index into it when known."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JsonProblem("duplicate key")
    return obj


def _constant(name: str) -> NoReturn:
    raise JsonProblem(f"{name} is not a JSON value")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonProblem("number out of range")
    return value


def _int(text: str) -> int:
    try:
        value = int(text)
        if not _I64_MIN <= value <= _U64_MAX:
            float(value)  # serde_json falls back to f64; past its range the number is refused
    except (ValueError, OverflowError):
        raise JsonProblem("number out of range") from None
    return value


DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_float, parse_int=_int, parse_constant=_constant
)


def scan_value(text: str, start: int, depth: int) -> tuple[Any, int]:
    """Decode the strict JSON value at ``text[start]``, which sits inside ``depth`` containers.

    Returns the value and where it ends; raises :class:`JsonProblem` with a position.
    """
    try:
        value, end = DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise JsonProblem(decode_message(error), error.pos) from None
    except (JsonProblem, RecursionError) as error:
        raise find_problem(text, start, len(text), depth) or _unlocated(error) from None
    if text[start] in "[{" or SURROGATE_ESCAPE.search(text, start, end):
        problem = find_problem(text, start, end, depth)
        if problem is not None:
            raise problem
    return value, end


def decode_message(error: json.JSONDecodeError) -> str:
    """The json module's complaint, worded for a header."""
    if error.msg == "Extra data":
        return "invalid JSON: text after the end of the header object"
    reason = error.msg.removesuffix(" at").removesuffix(" starting at")
    return f"invalid JSON: {reason[:1].lower()}{reason[1:]}"


def _unlocated(error: BaseException) -> JsonProblem:
    if isinstance(error, JsonProblem):
        return error
    return JsonProblem(f"JSON nested more than {MAX_DEPTH} levels deep")


def find_problem(
    text: str, start: int = 0, end: int | None = None, depth: int = 0
) -> JsonProblem | None:
    """The first strictness problem in ``text[start:end]``, a value inside ``depth`` containers.

    The text must be JSON up to the problem. Checks what serde_json refuses and Python's decoder
    lets through: nesting past :data:`MAX_DEPTH`, a repeated key within one object, NaN or
    Infinity, a number beyond f64, and a string escape that leaves an unpaired surrogate.
    """
    keys: list[set[str] | None] = [None] * depth
    for match in _TOKEN.finditer(text, start, len(text) if end is None else end):
        kind = match.lastgroup
        if kind == "open":
            if len(keys) >= MAX_DEPTH:
                return JsonProblem(f"JSON nested more than {MAX_DEPTH} levels deep", match.start())
            keys.append(set() if match.group() == "{" else None)
        elif kind == "close":
            if len(keys) > depth:
                keys.pop()
        else:
            message = _token_problem(match, keys[-1] if keys else None)
            if message is not None:
                return JsonProblem(message, match.start())
    return None


def _token_problem(match: re.Match[str], seen: set[str] | None) -> str | None:
    kind = match.lastgroup
    if kind == "constant":
        return f"{match.group()} is not a JSON value"
    if kind == "number":
        return _number_problem(match.group())
    string = match.group("string")
    value = json.loads(string) if "\\" in string else string[1:-1]
    if "\\" in string and has_lone_surrogate(value):
        return "a \\u escape leaves an unpaired UTF-16 surrogate"
    if kind == "key" and seen is not None:
        if value in seen:
            return f"duplicate key {value!r}"
        seen.add(value)
    return None


def _number_problem(token: str) -> str | None:
    try:
        _float(token) if any(c in token for c in ".eE") else _int(token)
    except JsonProblem as problem:
        return problem.message
    return None


def has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
