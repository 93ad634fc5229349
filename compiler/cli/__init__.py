"""The ``mirc`` command line: a thin layer over the library.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``handler``: a function taking the parsed arguments and returning the exit status. Handlers call
one library function, print its result or diagnostics, and pick the exit status; they hold no
logic of their own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from compiler.cli.output import print_diagnostics
from compiler.diagnostics import EXIT_INTERNAL, EXIT_USAGE, MircError

# One module per subcommand group, with the commands it adds, in this order. A run imports only
# the module of its command: the groups' libraries (a grammar toolkit, the schema validator, the
# site generator, numpy, torch) would take longer to import than most commands take to run.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("parse_cmd", ("parse",)),
    ("name_cmd", ("name",)),
    ("check_cmd", ("check",)),
    ("build_cmd", ("build",)),
    ("identify_cmd", ("identify", "fingerprint")),
    ("recipe_cmd", ("recipe",)),
    ("merge_cmd", ("merge",)),
    ("interop_cmd", ("import-mir", "export-mir")),
    ("site_cmd", ("site",)),
)

ISSUES_URL = "https://github.com/darkshapes/mirc/issues"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole ``mirc`` argument parser (also used to generate the CLI reference), or one with
    only the group of ``command``."""
    parser = argparse.ArgumentParser(
        prog="mirc",
        description="The MIR spec compiler: check, build and use a registry of ML models.",
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module, names in COMMANDS:
        if command is None or command in names:
            importlib.import_module(f"compiler.cli.{module}").register(subparsers)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if it names one (the top-level options take no value)."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if any(word in names for _, names in COMMANDS) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mirc``; return the exit status (0 ok, 1 rejected, 2 usage, 3 internal)."""
    given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(given))
    try:
        args = parser.parse_args(given)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.handler(args))
    except MircError as exc:
        print_diagnostics(exc.diagnostics, as_json=getattr(args, "json", False))
        return 1
    except KeyboardInterrupt:
        print("mirc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the one place that turns a bug into exit status 3
        if args.debug:
            traceback.print_exc()
        print(
            f"mirc: internal error: {type(exc).__name__}: {exc} "
            f"(a bug in mirc; please report it at {ISSUES_URL} with the command line; "
            "--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


__all__ = ["EXIT_USAGE", "build_parser", "main"]
