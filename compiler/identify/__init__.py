"""Identify model files from their safetensors headers: scored, explainable fingerprint matching.

``identify_files`` reads each header (``compiler.tensorfile``, never a pickle), scores every
fingerprint of the registry against it (``match``), and reports the MIR id of each component it
finds with the keys that decided it, ties, the prediction type, sizes and hashes (``report``).
``suggest_fingerprint`` writes the fingerprint block for a spec from a file (``suggest``).
Key prefixes are canonicalised through the table in ``prefixes``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.identify.match import Candidate, Finding, Score, candidates
from compiler.identify.report import FileReport, report
from compiler.identify.suggest import guess_format, suggest_fingerprint
from compiler.link import LinkedRegistry
from compiler.tensorfile import SafetensorsHeader, read_header

SUFFIX = ".safetensors"

__all__ = [
    "Candidate",
    "FileReport",
    "Finding",
    "Outcome",
    "Score",
    "candidates",
    "collect_files",
    "guess_format",
    "identify_file",
    "identify_files",
    "registry_identifier",
    "suggest_fingerprint",
]


@dataclass(frozen=True)
class Outcome:
    """One file's answer: a report, or the diagnostics that rejected it."""

    path: str
    report: FileReport | None
    diagnostics: tuple[Diagnostic, ...] = ()


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[Diagnostic]]:
    """The files named, with folders searched recursively for ``*.safetensors`` (sorted).

    A file named directly is read whatever its suffix, so a pickle is refused by name."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = (p for p in path.rglob("*" + SUFFIX) if p.is_file())
            files.extend(sorted(str(p) for p in found))
        elif path.exists():
            files.append(str(path))
        else:
            message = "no such file or folder"
            problems.append(Diagnostic.error("io", message, Span(str(path))))
    return files, problems


def identify_file(
    path: str | os.PathLike[str],
    pool: tuple[Candidate, ...],
    content_hash: bool = False,
    layout_hashes: bool = True,
) -> FileReport:
    """Identify one safetensors file; raises :class:`MircError` for a file mirc will not read.

    The layout hashes cost about half as much as the matching; ``layout_hashes=False`` skips
    them."""
    return report(read_header(path), pool, content_hash, layout_hashes)


def identify_files(
    files: Iterable[str], pool: tuple[Candidate, ...], content_hash: bool = False
) -> Iterator[Outcome]:
    """Identify each file in turn; a rejected file yields its diagnostics and the rest go on."""
    for file in files:
        try:
            yield Outcome(file, identify_file(file, pool, content_hash))
        except MircError as error:
            yield Outcome(file, None, tuple(error.diagnostics))


def registry_identifier(
    linked: Callable[[], LinkedRegistry | None],
) -> Callable[[SafetensorsHeader], tuple[str, ...]]:
    """The MIR ids a header identifies as (each component's best match and its ties), against
    the registry ``linked`` loads the first time it is asked (``mirc merge``'s MIR-id models)."""
    pools: list[tuple[Candidate, ...]] = []

    def identify(header: SafetensorsHeader) -> tuple[str, ...]:
        if not pools:
            registry = linked()
            pools.append(candidates(registry) if registry is not None else ())
        found = report(header, pools[0], layout_hashes=False).components
        return tuple(s.candidate.mir for f in found for s in (f.best, *f.ties))

    return identify
