"""The normalisation table (``normalisation.yaml``) and the changes import records by it.

The table is data: each :class:`Rule` says what it matches in ``mir.json``, what import does,
why, and whether export restores the upstream form. Import records a :class:`Change` for every
place a rule applied; the report counts them per rule and ``NORMALISATION.md`` is generated from
the table.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.yamlfile import load_yaml_file

TABLE = Path(__file__).resolve().parent / "normalisation.yaml"
EXPORT_MODES = ("restore", "normalise")

# A place in mir.json: the MIR key, the compatibility key, then the keys inside the entry.
UpstreamPath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    matches: str
    does: str
    why: str
    export: str  # "restore" or "normalise"


@dataclass(frozen=True, slots=True)
class Change:
    """One application of a rule: where in mir.json, and the value before and after."""

    rule: str
    path: UpstreamPath
    before: str
    after: str

    @property
    def key(self) -> str:
        return self.path[0]

    def to_json(self) -> dict[str, object]:
        compat = self.path[1] if len(self.path) > 1 else None
        return {
            "rule": self.rule,
            "key": self.key,
            "compat": compat,
            "path": list(self.path),
            "before": self.before,
            "after": self.after,
        }


@functools.cache
def rules() -> Mapping[str, Rule]:
    """The rules of the table, by name, in table order."""
    document = load_yaml_file(TABLE).value
    table = {entry["name"]: Rule(**entry) for entry in document["rules"]}
    bad = [r.name for r in table.values() if r.export not in EXPORT_MODES]
    if bad or len(table) != len(document["rules"]):
        raise ValueError(f"{TABLE}: bad or duplicate rules {bad}")
    return table


def rule_counts(changes: Iterable[Change]) -> dict[str, int]:
    """How many changes each rule made, in table order (rules that made none included)."""
    counted = Counter(change.rule for change in changes)
    return {name: counted[name] for name in rules()}


def table_markdown(counts: Mapping[str, int]) -> str:
    """NORMALISATION.md: the table as a page, with how often each rule fired on ``counts``'
    import."""
    lines = [
        "# Importing the upstream MIR database: the normalisation table",
        "",
        "<!-- Generated from compiler/interop/normalisation.yaml by the test suite "
        "(MIRC_UPDATE_SNAPSHOTS=1); do not edit. -->",
        "",
        "`mirc import-mir mir.json` turns each upstream key `DOMAIN.ARCH.SERIES` into the spec "
        "`models/ARCH/SERIES.yaml` (domains info, model, dev) or `ops/ARCH/SERIES.yaml` (ops); "
        "each compatibility key becomes a variant with `repo`, `backends` (from `pkg`), "
        "`hashes` (`file_256`, `layer_256`) and `upstream` (the original key and compatibility). "
        "Where the upstream data does not fit the spec format, one of these rules applies, and "
        "the import report counts it. `mirc export-mir` writes the registry back in the upstream "
        "format: rules marked *restore* round-trip exactly; rules marked *normalise* are the "
        "differences the round-trip test counts.",
        "",
        "| rule | matches | import does | why | export | count |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for rule in rules().values():
        cells = (rule.matches, rule.does, rule.why)
        text = " | ".join(cell.replace("|", "\\|") for cell in cells)
        lines.append(f"| `{rule.name}` | {text} | {rule.export} | {counts.get(rule.name, 0)} |")
    lines.extend(["", *_NOTES])
    return "\n".join(lines) + "\n"


_NOTES = (
    "Counts are from importing the July 2025 upstream database "
    "(`tests/fixtures/upstream/mir.json`, 320 entries).",
    "",
    "## Merging with curated specs",
    "",
    "Import owns four fields of a variant: `repo`, `backends`, `hashes` and `upstream`. In a "
    "spec file that already exists it sets those from upstream (where upstream has them), adds "
    "the variants the file lacks, and keeps every other field (name, description, links, "
    "components, base model, objective, parameters, dimensions, fingerprints, training, "
    "license …) as it "
    "is; the file is then written by the canonical writer. A file whose values would not change "
    "is not rewritten, so importing the same database twice changes nothing. Files no upstream "
    "key maps to are never touched.",
    "",
    "## What export writes",
    "",
    "`mirc export-mir` writes, per variant, only what the upstream format has a place for: "
    "`repo`, the backends as `pkg` (package → class, or {class: args}; `generation`, "
    "`precision`, `scheduler`, and the backend's `extra` verbatim) and the hashes "
    "(`file_256`, `layer_256`). Curated fields have no place there and are not exported. Keys "
    "and compatibility names come from `upstream` where import recorded them; otherwise the "
    "series' MIR id and the variant name (`base` → `*`). References are written as upstream "
    "writes them: `ops.precision.float.f16`.",
)
