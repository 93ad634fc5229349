"""``mirc import-mir`` and ``mirc export-mir`` on the whole upstream database (320 entries),
each against a floor measured in the same run:

- import: ``json.loads`` + ``yaml.safe_dump`` of every entry into its own file, written and
  fsynced like import writes (import adds normalisation, the staged ``mirc check`` and the
  canonical writer);
- re-import (nothing to write) against the same floor;
- export: ``yaml.safe_load`` of every spec + ``json.dumps`` (export adds the full check).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from compiler.interop.exporter import export_mir
from compiler.interop.importer import import_mir
from compiler.load import discover
from tests.bench.timing import best_time
from tests.conftest import ROOT

UPSTREAM = ROOT / "tests" / "fixtures" / "upstream" / "mir.json"


def _dump_floor(folder: Path) -> None:
    database = json.loads(UPSTREAM.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    for number, (key, body) in enumerate(database.items()):
        with (folder / f"{number}.yaml").open("w", encoding="utf-8") as stream:
            yaml.safe_dump({"key": key, "variants": body}, stream, sort_keys=False)
            stream.flush()
            os.fsync(stream.fileno())


def _load_floor(spec: Path) -> None:
    specs = [yaml.safe_load(path.read_text(encoding="utf-8")) for path, _ in discover(spec)]
    json.dumps(specs, indent=4)


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        counter = iter(range(100))

        def fresh_import() -> None:
            import_mir(UPSTREAM, root / f"spec{next(counter)}")

        def floor() -> None:
            _dump_floor(root / f"floor{next(counter)}")

        import_s = best_time(fresh_import, repeat=3)
        floor_s = best_time(floor, repeat=3)
        spec = root / "spec0"
        again_s = best_time(lambda: import_mir(UPSTREAM, spec), repeat=3)
        export_s = best_time(lambda: export_mir(spec, root / "mir.json"), repeat=3)
        load_s = best_time(lambda: _load_floor(spec), repeat=3)
        shutil.rmtree(root, ignore_errors=True)
    return [
        f"import {import_s * 1000:.0f} ms, re-import {again_s * 1000:.0f} ms; "
        f"json + yaml.safe_dump + fsync floor {floor_s * 1000:.0f} ms",
        f"ratio import / floor = {import_s / floor_s:.2f}; re-import / floor = "
        f"{again_s / floor_s:.2f}",
        f"export {export_s * 1000:.0f} ms; yaml.safe_load + json.dumps floor "
        f"{load_s * 1000:.0f} ms; ratio = {export_s / load_s:.2f}",
    ]
