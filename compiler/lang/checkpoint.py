"""MMPretrain checkpoint names: ``{model_name}_{YYYYMMDD}-{hash}.pth``.

The grammar (``compiler/grammars/checkpoint.lark``) imports the model-name rules of
``mmpretrain.lark``. The date must be a real calendar date and the hash eight lowercase
hexadecimal digits (the first eight of the file's SHA-256); both are checked after parsing and
reported at their own column.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from lark import Token, Tree

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.grammar import parse_or_raise
from compiler.lang.mmpretrain import CHAR_ERRORS, MAX_LENGTH, ModelName, model_name_from_tree

SUFFIX = ".pth"

CHECKPOINT_ERRORS: dict[str, list[str]] = {
    "expected '_' and the date (YYYYMMDD) after the model name": [
        "resnet50_8xb32_in1k",
        "resnet50_8xb32_in1k.pth",
    ],
    "expected the date (YYYYMMDD) after '_'": ["resnet50_8xb32_in1k_", "resnet50_8xb32_in1k_-x"],
    "expected '-' and the hash after the date": ["r_8xb32_in1k_20210831", "r_8xb32_in1k_2021_x"],
    "expected the hash after '-'": ["r_8xb32_in1k_20210831-", "r_8xb32_in1k_20210831-.pth"],
    "expected '.pth' after the hash": ["r_8xb32_in1k_20210831-ea4938fc", "r_3rdparty_c_1-a-b"],
    "unexpected text after '.pth'": ["r_8xb32_in1k_20210831-ea4938fc.pth.pth"],
    "a model name needs {module}_{training}_{data} before the date": [
        "resnet50_20210831-ea4938fc.pth",
        "resnet50_in1k_20210831-ea4938fc.pth",
    ],
    "empty checkpoint name": [""],
}


@dataclass(frozen=True, slots=True)
class CheckpointName:
    """A checkpoint file name: the model name, the date it was made and its hash prefix."""

    model: ModelName
    date: datetime.date
    hash: str

    def __str__(self) -> str:
        return f"{self.model}_{self.date:%Y%m%d}-{self.hash}{SUFFIX}"

    def to_json(self) -> dict[str, object]:
        return {
            "checkpoint": str(self),
            "date": self.date.isoformat(),
            "hash": self.hash,
            "model": self.model.to_json(),
        }

    def describe(self) -> str:
        return f"{self}  model={self.model} date={self.date.isoformat()} hash={self.hash}"


def parse_checkpoint(text: str, file: str = "<arg>") -> CheckpointName:
    """Parse a checkpoint name; a malformed name, date or hash raises :class:`MircError`."""
    if len(text) > MAX_LENGTH:
        span = Span.at_offset(file, text, MAX_LENGTH)
        message = f"checkpoint name is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        raise MircError([Diagnostic.error("checkpoint-too-long", message, span)])
    tree = parse_or_raise(
        "checkpoint",
        text,
        file,
        CHECKPOINT_ERRORS,
        "checkpoint-syntax",
        "checkpoint name",
        CHAR_ERRORS,
    )
    model_tree, date_token, hash_token = tree.children
    assert isinstance(model_tree, Tree)
    problems = [
        *_date_problems(date_token, text, file),
        *_hash_problems(hash_token, text, file),
    ]
    if problems:
        raise MircError(problems)
    date = datetime.datetime.strptime(str(date_token), "%Y%m%d").date()
    return CheckpointName(model_name_from_tree(model_tree), date, str(hash_token))


def _span(token: Token, text: str, file: str) -> Span:
    start = int(token.start_pos or 0)
    return Span.at_offset(file, text, start, start + len(token))


def _date_problems(token: Token, text: str, file: str) -> list[Diagnostic]:
    value = str(token)
    if len(value) != 8:
        message = f"a checkpoint date is YYYYMMDD (8 digits); {value!r} has {len(value)}"
    else:
        try:
            datetime.datetime.strptime(value, "%Y%m%d")
            return []
        except ValueError as exc:
            message = f"{value} is not a calendar date ({exc})"
    return [Diagnostic.error("checkpoint-date", message, _span(token, text, file))]


def _hash_problems(token: Token, text: str, file: str) -> list[Diagnostic]:
    value = str(token)
    if re.fullmatch(r"[0-9a-f]{8}", value):
        return []
    message = f"a checkpoint hash is 8 lowercase hexadecimal digits; got {value!r}"
    return [Diagnostic.error("checkpoint-hash", message, _span(token, text, file))]
