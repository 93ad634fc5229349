"""The command line of the tools that write a data file of mirc from an installed library
(``gen_mecha_catalogue.py``, ``gen_kohya_names.py``): write it, or with ``--check`` only compare
and exit 1 when the committed file is stale."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path


def write_or_check(description: str, target: Path, text: Callable[[], str], script: str) -> int:
    """Parse ``--check``; then write ``text()`` to ``target``, or compare it with the file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args()
    wanted = text()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != wanted:
            print(f"{target} is stale; run python3 tools/{Path(script).name}", file=sys.stderr)
            return 1
        return 0
    target.write_text(wanted, encoding="utf-8")
    print(f"wrote {target} from sd-mecha {version('sd-mecha')}")
    return 0
