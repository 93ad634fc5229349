"""One diagnostic type, one collecting sink and one renderer for every stage of mirc.

Every stage reports problems as :class:`Diagnostic` values instead of raising at the first one;
the command line renders them as ``FILE:LINE:COL: severity: message`` followed by the source line
and a caret, or as JSON, and the worst severity decides the exit status.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# Exit statuses shared by every command (DESIGN §8, RELIABILITY rule 1).
EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class Severity(enum.Enum):
    """How bad a diagnostic is; only errors reject the input."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a source: 1-based line and column, with an optional end and the line's text.

    Binary inputs have no lines: they carry ``byte`` (0-based offset) instead.
    """

    file: str
    line: int = 0
    col: int = 0
    end_line: int | None = None
    end_col: int | None = None
    source_line: str | None = None
    byte: int | None = None

    @classmethod
    def in_text(cls, file: str, text: str, line: int, col: int, end_col: int | None = None) -> Span:
        """A span whose source line is taken from ``text`` (1-based ``line``)."""
        lines = text.splitlines()
        source = lines[line - 1] if 0 < line <= len(lines) else None
        return cls(file, line, col, line, end_col, source)

    @classmethod
    def at_offset(cls, file: str, text: str, offset: int, end_offset: int | None = None) -> Span:
        """The span of character ``offset`` (0-based) within ``text``."""
        offset = max(0, min(offset, len(text)))
        line = text.count("\n", 0, offset) + 1
        line_start = text.rfind("\n", 0, offset) + 1
        col = offset - line_start + 1
        end_col = None
        if end_offset is not None and text.find("\n", offset, end_offset) < 0:
            end_col = end_offset - line_start + 1
        return cls.in_text(file, text, line, col, end_col)

    @property
    def location(self) -> str:
        if self.byte is not None:
            return self.file
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem found in some input, with where it is and what might help."""

    severity: Severity
    code: str
    message: str
    span: Span | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def error(
        cls, code: str, message: str, span: Span | None = None, notes: Iterable[str] = ()
    ) -> Diagnostic:
        return cls(Severity.ERROR, code, message, span, tuple(notes))

    @classmethod
    def warning(
        cls, code: str, message: str, span: Span | None = None, notes: Iterable[str] = ()
    ) -> Diagnostic:
        return cls(Severity.WARNING, code, message, span, tuple(notes))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, object]:
        span = self.span
        out: dict[str, object] = {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "notes": list(self.notes),
        }
        if span is not None:
            out["file"] = span.file
            if span.byte is not None:
                out["byte"] = span.byte
            else:
                out["line"] = span.line
                out["col"] = span.col
        return out


class MircError(Exception):
    """Raised by a library function whose input was rejected; carries the diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].message if self.diagnostics else "rejected"
        super().__init__(first)


@dataclass
class DiagnosticSink:
    """Collects diagnostics from a stage that keeps going after the first problem."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    def error(self, code: str, message: str, span: Span | None = None, *notes: str) -> None:
        self.add(Diagnostic.error(code, message, span, notes))

    def warning(self, code: str, message: str, span: Span | None = None, *notes: str) -> None:
        self.add(Diagnostic.warning(code, message, span, notes))

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise MircError(self.items)


def render_text(diagnostic: Diagnostic) -> str:
    """``FILE:LINE:COL: error: message``, then the source line and a caret, then the notes."""
    span = diagnostic.span
    head = f"{diagnostic.severity.value}: {diagnostic.message}"
    if span is not None:
        suffix = f" (byte {span.byte})" if span.byte is not None else ""
        head = f"{span.location}: {head}{suffix}"
    lines = [head]
    if span is not None and span.source_line is not None and span.col > 0:
        source = _printable(span.source_line)
        lines.append(f"    {source}")
        width = 1
        if span.end_col is not None and (span.end_line in (None, span.line)):
            width = max(1, span.end_col - span.col)
        pad = "".join("\t" if ch == "\t" else " " for ch in source[: span.col - 1])
        lines.append(f"    {pad}{'^' * width}")
    lines.extend(f"  note: {note}" for note in diagnostic.notes)
    return "\n".join(lines)


def _printable(line: str) -> str:
    """The source line with control characters shown as escapes, so a caret still lines up."""
    return "".join(ch if ch == "\t" or ch.isprintable() else "?" for ch in line)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """Diagnostics as a JSON array with sorted keys."""
    return json.dumps([d.to_json() for d in diagnostics], indent=2, sort_keys=True)


def exit_status(diagnostics: Iterable[Diagnostic]) -> int:
    """0 when nothing is an error, 1 when some input was rejected."""
    return EXIT_REJECTED if any(d.is_error for d in diagnostics) else EXIT_OK


def suggest(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates closest to ``name`` (for "did you mean"), best first."""
    import difflib

    pool = sorted(set(candidates))
    return difflib.get_close_matches(name, pool, n=limit, cutoff=0.6)


def did_you_mean(name: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """A one-note tuple ``did you mean 'x'?`` or nothing."""
    close = suggest(name, candidates)
    if not close:
        return ()
    return ("did you mean " + " or ".join(repr(c) for c in close) + "?",)
