"""``mirc site [--serve] [--out DIR]``: render the registry website and build it with MkDocs."""

from __future__ import annotations

import argparse
from pathlib import Path

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import exit_status
from compiler.resources import default_spec_dir
from compiler.site import DEFAULT_ADDRESS, DEFAULT_OUT, build_site


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "site",
        help="render the registry website and build it with MkDocs (Material)",
        description="Check the registry, render a page per series, ops entry and target GPU, "
        "the registry table, the taxonomy, the language and CLI references and the downloads "
        "into a MkDocs project beside the output (DIR-src/), then build it with "
        "`mkdocs build --strict` into DIR. The site needs no network to be read.",
    )
    parser.add_argument(
        "--spec", type=Path, metavar="DIR", help="registry folder (default: ./spec)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"where the HTML goes (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="serve the site with `mkdocs serve` instead of building it (Ctrl-C stops)",
    )
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"where --serve listens (default: {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from compiler.cli import build_parser  # the whole parser, for the CLI reference page

    result = build_site(
        args.spec or default_spec_dir(),
        args.out,
        build_parser(),
        serve_at=args.address if args.serve else None,
    )
    if args.json:
        print_json(result.to_json())
    elif result.ok and not args.serve:
        print(
            f"{args.out}: {result.pages} pages rendered into {result.sources_dir} "
            f"in {result.render_seconds:.1f} s, built by mkdocs in {result.mkdocs_seconds:.1f} s"
        )
    print_diagnostics(result.diagnostics, as_json=args.json)
    return exit_status(result.diagnostics)
