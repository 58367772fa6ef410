"""The ``tokquant`` command's first module: it imports nothing before it can catch Ctrl-C.

Importing the CLI (typer, rich, the commands) takes a few hundred milliseconds, and a
Ctrl-C in that time would print a KeyboardInterrupt traceback from deep inside an import.
Here the import itself is inside the handler; :func:`tokquant.cli.app.main` takes over
from there.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from tokquant.cli.app import main as run

        run()
    except KeyboardInterrupt:
        from tokquant.errors import INTERRUPTED

        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(130)
