"""Shared test helpers: the repository root, running ``mirc`` in-process, snapshots."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from compiler.cli import main

# Timing is not what the properties test: CI machines are small and loaded (two cores shared with
# pytest-xdist), so hypothesis's per-example deadline is off for every property.
settings.register_profile("mirc", deadline=None)
settings.load_profile("mirc")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """mirc's cache (``MIRC_CACHE_DIR``) in a folder of the test session, not the user's."""
    os.environ["MIRC_CACHE_DIR"] = str(tmp_path_factory.mktemp("mirc-cache"))


@dataclass(frozen=True)
class UpstreamEntry:
    """One entry of the upstream ``mir.json`` (tests/fixtures/upstream/mir-json-entries.tsv)."""

    key: str
    compat: str
    repo: str
    cls: str


def upstream_entries() -> list[UpstreamEntry]:
    """Every (key, compat) entry of the upstream MIR database, with its hub repo and class."""
    path = Path(__file__).parent / "fixtures" / "upstream" / "mir-json-entries.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [UpstreamEntry(*line.split("\t")) for line in lines if not line.startswith("#")]


@dataclass
class Run:
    status: int
    out: str
    err: str


def run_mirc(*argv: str, cwd: Path | None = None) -> Run:
    """Run ``mirc`` in this process, capturing its output and exit status."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(argv))
    finally:
        os.chdir(previous)
    return Run(status, out.getvalue(), err.getvalue())


def check_snapshot(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/snapshots/NAME``; MIRC_UPDATE_SNAPSHOTS=1 rewrites it."""
    path = SNAPSHOTS / name
    if os.environ.get("MIRC_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing snapshot {path}; run with MIRC_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def mirc():
    return run_mirc
