"""Printing results and diagnostics for the command line, as text or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from compiler.diagnostics import Diagnostic, render_json, render_text


def print_diagnostics(diagnostics: Iterable[Diagnostic], as_json: bool = False) -> None:
    """Diagnostics to stderr: rendered text, or a JSON array when ``as_json``."""
    items = list(diagnostics)
    if not items:
        return
    if as_json:
        print(render_json(items), file=sys.stderr)
        return
    for diagnostic in items:
        print(render_text(diagnostic), file=sys.stderr)


def print_json(value: object) -> None:
    """``value`` as indented JSON with sorted keys on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
