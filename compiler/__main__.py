"""``python -m compiler`` is the ``mirc`` command."""

from compiler.cli import main

raise SystemExit(main())
