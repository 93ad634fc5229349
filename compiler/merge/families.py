"""The registry's block fingerprints, kept in a cache file between merges.

Naming a merge's family (and finding its blocks and components) needs the registry's
fingerprints with a ``blocks:`` or ``components:`` table, a few entries; loading, validating and
linking the whole registry to get them takes a third of a second, longer than merging a small
model. The entries are derived data, so they are cached: one JSON file per key, the key a digest
of the paths, sizes and modification times of every file of the registry, of the schemas it is
checked against and of mirc itself (as ``make`` and ruff tell changed files) — an edited spec or
another mirc makes another key. The file is written atomically (a temporary file renamed); a
cache file that cannot be read or is damaged is rebuilt, and a cache folder that cannot be
written is no error: the registry is loaded as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from compiler.atomicfile import write_atomic
from compiler.merge.blocks import BlockFingerprint
from compiler.resources import PACKAGE_DIR, data_dir

FORMAT = 2  # 2: the fingerprints' components tables too


def cache_dir() -> Path:
    """``$MIRC_CACHE_DIR``, else ``$XDG_CACHE_HOME/mirc``, else ``~/.cache/mirc``."""
    if os.environ.get("MIRC_CACHE_DIR"):
        return Path(os.environ["MIRC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mirc"


def cached_fingerprints(
    spec_dir: Path, folder: Path, load: Callable[[], Sequence[BlockFingerprint]]
) -> Sequence[BlockFingerprint]:
    """The block fingerprints of the registry in ``spec_dir``: from ``folder`` when cached there,
    else from ``load`` (then cached)."""
    path = folder / f"block-fingerprints-{_key(spec_dir)}.json"
    try:
        return _decode(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none, or damaged
        pass
    table = load()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(_encode(table), sort_keys=True).encode())
    except OSError:
        pass
    return table


def _key(spec_dir: Path) -> str:
    """A digest of the names, sizes and modification times of the registry's files, of the
    schemas it is checked against and of mirc's own files."""
    digest = hashlib.sha256(f"mirc block fingerprints {FORMAT}\n".encode())
    for root in (str(spec_dir), str(data_dir("spec") / "schema"), str(PACKAGE_DIR)):
        for path in _files(root):
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _files(root: str) -> Iterator[str]:
    """Every file under ``root``, in a stable order (compiled bytecode left out)."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            yield os.path.join(folder, name)


def _encode(table: Sequence[BlockFingerprint]) -> dict[str, object]:
    return {
        "format": FORMAT,
        "fingerprints": [
            {
                "mir": f.mir,
                "required": {key: list(shape) for key, shape in f.required.items()},
                "blocks": {block: list(prefixes) for block, prefixes in f.blocks.items()},
                "components": {name: list(prefixes) for name, prefixes in f.components.items()},
            }
            for f in table
        ],
    }


def _decode(document: Any) -> list[BlockFingerprint]:
    if document["format"] != FORMAT or not isinstance(document["fingerprints"], list):
        raise ValueError("not a cache file of this format")
    return [
        BlockFingerprint(
            str(entry["mir"]),
            {str(k): tuple(v) for k, v in entry["required"].items()},
            _prefixes(entry["blocks"]),
            _prefixes(entry["components"]),
        )
        for entry in document["fingerprints"]
    ]


def _prefixes(table: Any) -> dict[str, tuple[str, ...]]:
    return {str(name): tuple(str(p) for p in prefixes) for name, prefixes in table.items()}
