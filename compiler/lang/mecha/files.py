"""Recipe files: reading them safely, checking and formatting many at once.

These are the library functions behind ``mirc recipe check`` and ``mirc recipe fmt``. A file is
read only up to the 1 MiB cap, must be UTF-8, and every problem in every file is reported. A
formatted file is rewritten only when its text changes and it was not rejected, through
:func:`compiler.atomicfile.write_atomic`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from compiler.atomicfile import write_atomic
from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha.ast import Recipe
from compiler.lang.mecha.check import MirResolver, check_recipe
from compiler.lang.mecha.format import format_recipe
from compiler.lang.mecha.parser import MAX_BYTES, parse_recipe


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """One recipe file's check: how many expressions it has and what was found."""

    file: str
    expressions: int
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "ok": self.ok,
            "expressions": self.expressions,
            "errors": sum(d.is_error for d in self.diagnostics),
            "warnings": sum(not d.is_error for d in self.diagnostics),
        }


@dataclass(frozen=True, slots=True)
class FormattedFile:
    """One recipe file's formatting; ``formatted`` is ``None`` when the file was rejected."""

    file: str
    formatted: str | None
    changed: bool = False
    written: bool = False


T = TypeVar("T", "CheckedFile", "FormattedFile")


@dataclass(frozen=True, slots=True)
class Report(Generic[T]):
    """The per-file results of a command over many files, and every diagnostic, in file order."""

    files: tuple[T, ...]
    diagnostics: tuple[Diagnostic, ...]


def read_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and parse a recipe file (at most 1 MiB of UTF-8); problems raise MircError."""
    return parse_recipe(read_recipe_text(path), str(path))


def read_recipe_text(path: str | os.PathLike[str]) -> str:
    """A recipe file's text: at most 1 MiB, UTF-8; problems raise MircError."""
    file = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        message = f"cannot read the recipe: {exc.strerror or type(exc).__name__}"
        raise MircError([Diagnostic.error("recipe-read", message, Span(file))]) from None
    if len(data) > MAX_BYTES:
        message = f"recipe is larger than {MAX_BYTES} bytes (1 MiB)"
        raise MircError([Diagnostic.error("recipe-too-large", message, Span(file))])
    return _decode(data, file)


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line = prefix.count("\n") + 1
        col = len(prefix) - prefix.rfind("\n")
        source = data.decode("utf-8", "replace").split("\n")[line - 1]
        message = f"invalid UTF-8 byte 0x{data[exc.start]:02x}; a recipe is UTF-8 text"
        span = Span(file, line, col, line, col + 1, source)
        raise MircError([Diagnostic.error("recipe-encoding", message, span)]) from None


def check_recipe_files(
    paths: Iterable[str | os.PathLike[str]], resolver: MirResolver | None = None
) -> Report[CheckedFile]:
    """Read, parse and check every file; all diagnostics of all files are returned."""
    results = []
    for path in paths:
        try:
            recipe = read_recipe(path)
        except MircError as exc:
            results.append(CheckedFile(str(path), 0, exc.diagnostics))
            continue
        found = tuple(check_recipe(recipe, resolver=resolver))
        results.append(CheckedFile(str(path), len(recipe.expressions), found))
    return Report(tuple(results), _all(results))


def format_recipe_files(
    paths: Sequence[str | os.PathLike[str]], write: bool = False
) -> Report[FormattedFile]:
    """Format every file; with ``write``, rewrite (atomically) the ones whose text changes."""
    results = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        try:
            text = read_recipe_text(path)
            formatted = format_recipe(parse_recipe(text, str(path)))
        except MircError as exc:
            results.append(FormattedFile(str(path), None))
            diagnostics.extend(exc.diagnostics)
            continue
        results.append(_format_file(path, formatted, formatted != text, write, diagnostics))
    return Report(tuple(results), tuple(diagnostics))


def _format_file(
    path: str | os.PathLike[str],
    formatted: str,
    changed: bool,
    write: bool,
    diagnostics: list[Diagnostic],
) -> FormattedFile:
    if not (write and changed):
        return FormattedFile(str(path), formatted, changed)
    try:
        write_atomic(path, formatted.encode("utf-8"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        message = f"cannot write the recipe: {reason}"
        diagnostics.append(Diagnostic.error("recipe-write", message, Span(str(path))))
        return FormattedFile(str(path), formatted, changed)
    return FormattedFile(str(path), formatted, changed, written=True)


def _all(results: Iterable[CheckedFile]) -> tuple[Diagnostic, ...]:
    return tuple(d for result in results for d in result.diagnostics)
