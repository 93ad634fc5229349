"""Downloads: the registry's JSON Schemas and the registry itself in the upstream ``mir.json``
format (written by the exporter, byte for byte what ``mirc export-mir`` writes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from compiler.interop.exporter import database_text, export_database
from compiler.plan.model import PlannedFile
from compiler.resources import data_dir
from compiler.site import links
from compiler.site.model import SiteInput, StaticFile

SCHEMA_FOLDER = "downloads/schema"
MIR_JSON = "downloads/mir.json"


def schema_dir(spec_dir: Path) -> Path:
    """The registry's own schemas, else the shipped ones (as ``mirc check`` chooses)."""
    own = spec_dir / "schema"
    return own if own.is_dir() else data_dir("spec") / "schema"


def plan_downloads(site: SiteInput) -> tuple[PlannedFile, list[StaticFile]]:
    files = [
        StaticFile(f"{SCHEMA_FOLDER}/{path.name}", path.read_bytes())
        for path in sorted(schema_dir(site.spec_dir).glob("*.schema.json"))
    ]
    database = export_database(site.linked)
    files.append(StaticFile(MIR_JSON, database_text(database).encode("utf-8")))
    rows = [_row(file) for file in files]
    context = {
        "schemas": [r for r in rows if r["path"].startswith(SCHEMA_FOLDER)],
        "mir_json": next(r for r in rows if r["path"] == MIR_JSON),
        "entries": len(database),
    }
    return PlannedFile(links.DOWNLOADS, "site/downloads.md.j2", context, "spec/schema/"), files


def _row(file: StaticFile) -> dict[str, str]:
    title = description = ""
    if file.path.startswith(SCHEMA_FOLDER):
        schema = json.loads(file.data)
        title, description = schema.get("title", ""), schema.get("description", "")
    return {
        "path": file.path,
        "name": file.path.rsplit("/", 1)[-1],
        "href": links.link(links.DOWNLOADS, file.path),
        "title": title,
        "description": description,
        "size": f"{len(file.data) / 1024:.1f} KiB",
        "sha256": hashlib.sha256(file.data).hexdigest(),
    }
