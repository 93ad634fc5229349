"""``mirc parse ID… [--kind KIND] [--json]``: parse and normalise identifiers and names."""

from __future__ import annotations

import argparse

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import exit_status
from compiler.names import KINDS, parse_names


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "parse",
        help="parse MIR ids (or other names) and print their parts",
        description="Parse each argument and print its canonical form and parts. "
        "MIR ids are also checked against the taxonomy.",
    )
    parser.add_argument("names", nargs="+", metavar="ID", help="identifiers to parse")
    parser.add_argument(
        "--kind",
        choices=sorted(KINDS),
        default="mir",
        help="what the arguments are (default: mir)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = parse_names(args.kind, args.names)
    if args.json:
        print_json([item.to_json() for item in result.parsed])
    else:
        for item in result.parsed:
            print(item.describe())
    print_diagnostics(result.diagnostics, as_json=args.json)
    return exit_status(result.diagnostics)
