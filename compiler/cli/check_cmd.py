"""``mirc check [SPEC_DIR] [--json] [--deep]``: validate and link the whole registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import exit_status
from compiler.registry import check_registry
from compiler.resources import default_spec_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate and link every spec of a registry",
        description="Check every spec file (YAML rules, JSON Schema, paths, taxonomy) and "
        "resolve every MIR id they mention. All files are checked in one run.",
    )
    parser.add_argument(
        "spec_dir",
        nargs="?",
        type=Path,
        metavar="SPEC_DIR",
        help="registry folder (default: ./spec, else the registry mirc ships)",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also import diffusers/transformers and check that every named class exists",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec_dir = args.spec_dir or default_spec_dir()
    result = check_registry(spec_dir, deep=args.deep)
    summary = result.summary()
    if args.json:
        print_json({"spec_dir": str(spec_dir), "summary": summary, "ok": result.ok})
    else:
        parts = ", ".join(f"{v} {k}" for k, v in summary.items())
        print(f"{'ok' if result.ok else 'FAILED'}: {spec_dir}: {parts}")
    print_diagnostics(result.diagnostics, as_json=args.json)
    return exit_status(result.diagnostics)
