"""``mirc build [--check] [--spec DIR] [--out DIR]``: compile the registry into ``generated/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.build import FIX_COMMAND, build
from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import EXIT_OK, EXIT_REJECTED, exit_status
from compiler.resources import default_spec_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build",
        help="compile the registry into generated/ (parameters, loaders, training scripts)",
        description="Check the registry, plan every variant for every target, render the "
        "templates and write generated/ atomically. Unchanged inputs are not re-rendered.",
    )
    parser.add_argument(
        "--spec", type=Path, metavar="DIR", help="registry folder (default: ./spec)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("generated"), metavar="DIR", help="output folder"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="render in memory and fail if generated/ differs (writes nothing)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = build(args.spec or default_spec_dir(), args.out, check=args.check)
    status = exit_status(result.diagnostics)
    stale = args.check and bool(result.changed)
    if args.json:
        print_json(
            {
                "ok": result.ok and not stale,
                "files": result.files,
                "rendered": result.rendered,
                "changed": result.changed,
                "up_to_date": result.up_to_date,
            }
        )
    print_diagnostics(result.diagnostics, as_json=args.json)
    if status != EXIT_OK:
        return status
    if stale:
        if not args.json:
            sys.stdout.write(result.diff)
        print(
            f"{args.out}: {len(result.changed)} file(s) out of date; run `{FIX_COMMAND}` to update",
            file=sys.stderr,
        )
        return EXIT_REJECTED
    if not args.json:
        _summary(args, result.files, result.rendered, result.changed, result.up_to_date)
    return EXIT_OK


def _summary(
    args: argparse.Namespace, files: int, rendered: int, changed: list[str], up_to_date: bool
) -> None:
    if up_to_date:
        print(f"{args.out}: up to date ({files} files); nothing rendered or written")
    elif args.check:
        print(f"{args.out}: up to date ({files} files)")
    else:
        print(f"{args.out}: {files} files, {rendered} rendered, {len(changed)} changed")
