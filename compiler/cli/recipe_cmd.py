"""``mirc recipe check|fmt FILE…``: check and format Mecha merge recipes."""

from __future__ import annotations

import argparse
import sys

from compiler.cli.output import print_diagnostics, print_json
from compiler.diagnostics import EXIT_OK, EXIT_REJECTED, exit_status
from compiler.lang.mecha.files import check_recipe_files, format_recipe_files
from compiler.registry import lazy_resolver
from compiler.resources import default_spec_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "recipe",
        help="check and format Mecha merge recipes (.mecha)",
        description="Read Mecha merge recipes (sd-mecha's format or the seed's dialect).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="check recipes before any tensor is read",
        description="Check each recipe: references, merge methods and their arguments, value "
        "types, merge spaces and model configs. Reports every problem in every file; exits 1 "
        "if any file has an error (warnings do not fail).",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="recipe files")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(handler=run)
    fmt = actions.add_parser(
        "fmt",
        help="write recipes in sd-mecha's format",
        description="Format each recipe in sd-mecha's dialect (version line, one space between "
        "arguments, no blank lines, no final newline: sd-mecha 1.1.8 reads none) and print it "
        "exactly as --write would write it; several files are printed one after another.",
    )
    fmt.add_argument("files", nargs="+", metavar="FILE", help="recipe files")
    mode = fmt.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 naming files that would change")
    mode.add_argument("--write", action="store_true", help="rewrite changed files in place")
    fmt.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check(args)
    return _fmt(args)


def _check(args: argparse.Namespace) -> int:
    report = check_recipe_files(args.files, lazy_resolver(default_spec_dir()))
    if args.json:
        print_json([result.to_json() for result in report.files])
    else:
        for result in report.files:
            print(_summary(result.file, result.ok, result.expressions, result.diagnostics))
    print_diagnostics(report.diagnostics, as_json=args.json)
    return exit_status(report.diagnostics)


def _summary(file: str, ok: bool, expressions: int, diagnostics: tuple[object, ...]) -> str:
    count = len(diagnostics)
    if not ok:
        return f"{file}: rejected"
    warnings = f", {count} warning{'s' if count != 1 else ''}" if count else ""
    return f"{file}: ok ({expressions} expressions{warnings})"


def _fmt(args: argparse.Namespace) -> int:
    report = format_recipe_files(args.files, write=args.write)
    done = [result for result in report.files if result.formatted is not None]
    if args.check:
        for result in done:
            if result.changed:
                print(f"would reformat {result.file}")
    elif args.write:
        for result in done:
            if result.written:
                print(f"reformatted {result.file}")
    else:
        sys.stdout.write("\n".join(result.formatted or "" for result in done))
    print_diagnostics(report.diagnostics)
    would_change = args.check and any(result.changed for result in done)
    return EXIT_REJECTED if report.diagnostics or would_change else EXIT_OK
