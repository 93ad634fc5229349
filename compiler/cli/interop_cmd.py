"""``mirc import-mir MIR_JSON`` and ``mirc export-mir``: the upstream database in and out."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.cli.output import print_diagnostics, print_json
from compiler.interop.exporter import export_mir
from compiler.interop.importer import ImportResult, import_mir
from compiler.interop.table import rules
from compiler.resources import default_spec_dir

DEFAULT_OUTPUT = Path("generated") / "mir.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    importer = subparsers.add_parser(
        "import-mir",
        help="import the upstream MIR database (mir.json) into specs",
        description="Turn every entry of an upstream mir.json into specs under SPEC/models/ "
        "and SPEC/ops/, normalised by the documented table (compiler/interop/NORMALISATION.md) "
        "and reported per rule. Existing files keep every field import does not own; a second "
        "import changes nothing. Rejected input writes nothing.",
    )
    importer.add_argument("mir_json", type=Path, metavar="MIR_JSON", help="the upstream mir.json")
    importer.add_argument(
        "--spec", type=Path, default=Path("spec"), metavar="DIR", help="registry folder (./spec)"
    )
    importer.add_argument("--json", action="store_true", help="machine-readable output")
    importer.set_defaults(handler=run_import)
    exporter = subparsers.add_parser(
        "export-mir",
        help="export the registry in the upstream mir.json format",
        description="Check the registry and write it in the upstream MIR database format: "
        "repo, backends (pkg) and hashes of every variant; curated fields have no place there.",
    )
    exporter.add_argument(
        "--spec",
        type=Path,
        metavar="DIR",
        help="registry folder (default: ./spec, else the shipped one)",
    )
    exporter.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help=f"where to write (default: {DEFAULT_OUTPUT})",
    )
    exporter.add_argument("--json", action="store_true", help="machine-readable output")
    exporter.set_defaults(handler=run_export)


def run_import(args: argparse.Namespace) -> int:
    result = import_mir(args.mir_json, args.spec)
    if args.json:
        print_json(result.to_json())
    else:
        print(_import_text(result))
    print_diagnostics(result.diagnostics, as_json=args.json)
    return 0


def _import_text(result: ImportResult) -> str:
    files = (
        f"{len(result.new)} new, {len(result.updated)} updated, {len(result.unchanged)} unchanged"
    )
    lines = [
        f"imported {result.entries} entries ({result.compat_entries} compatibility entries) "
        f"from {result.source} into {result.spec_dir}: {files}",
        "normalisation (rule, changes, export):",
    ]
    table = rules()
    for name, count in result.rule_counts().items():
        if count:
            lines.append(f"  {name:<24} {count:>5}  {table[name].export}")
    return "\n".join(lines)


def run_export(args: argparse.Namespace) -> int:
    spec_dir = args.spec or default_spec_dir()
    result = export_mir(spec_dir, args.output)
    if args.json:
        print_json({"spec_dir": str(spec_dir), **result.to_json()})
    else:
        print(
            f"exported {result.series} series ({result.entries} compatibility entries) "
            f"from {spec_dir} to {result.output}"
        )
    print_diagnostics(result.diagnostics, as_json=args.json)
    return 0
