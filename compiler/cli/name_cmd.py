"""``mirc name REPO… [--class CLASS] [--domain D] [--json]``: MIR ids from hub repo ids."""

from __future__ import annotations

import argparse

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import exit_status
from compiler.naming import DEFAULT_DOMAIN, name_repos


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "name",
        help="derive MIR ids from hub repo ids by the MIR naming rules",
        description="Derive a MIR id from each hub repo id: the series and compatibility by "
        "the naming rules (lowercase, hyphen only; parameter sizes, library names and minor "
        "versions dropped; breaking suffixes such as -diffusers or -prior become the "
        "compatibility), the architecture from --class (unclassified without it).",
    )
    parser.add_argument("repos", nargs="+", metavar="REPO", help="hub repo ids, like org/name")
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="CLASS",
        help="a diffusers pipeline or transformers model/config class that decides the "
        "architecture (e.g. FluxPipeline, LlamaModel)",
    )
    parser.add_argument(
        "--domain",
        default=DEFAULT_DOMAIN,
        help=f"the MIR domain: dev, model, ops or info (default: {DEFAULT_DOMAIN})",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = name_repos(args.repos, args.class_name, args.domain)
    if args.json:
        print_json([item.to_json() for item in result.named])
    else:
        for item in result.named:
            print(item.describe())
    print_diagnostics(result.diagnostics, as_json=args.json)
    return exit_status(result.diagnostics)
