"""The ``tokquant`` command's first module: it imports nothing before it can catch Ctrl-C.

Importing the CLI (typer, rich, the commands) takes a few hundred milliseconds, and
torch a few seconds more. A Ctrl-C raised as an exception in that time can surface
inside torch's C++ start-up (pybind11 calls back into Python during ``import torch``),
which aborts the process with a native stack instead of a message. So until the work
starts, and again from when it has ended (atexit handlers, thread joins), Ctrl-C
prints the one interrupted line and exits 130 at once: nothing is being written then.
While the work runs, :func:`tokquant.cli.app.main` raises it as an exception, so that
partial outputs are cleaned up on the way out.
"""

from __future__ import annotations

import os
import signal
import sys

from tokquant.errors import INTERRUPTED


def exit_interrupted(signum: int = signal.SIGINT, frame: object = None) -> None:
    """A SIGINT handler that writes the interrupted line and ends the process (130)."""
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.write(2, (INTERRUPTED + "\n").encode())  # sys.stderr may be gone at teardown
    finally:
        os._exit(130)


def main() -> None:
    signal.signal(signal.SIGINT, exit_interrupted)
    code = 0
    try:
        # start-up time: the CLI is imported under the handler above, so a Ctrl-C while
        # it starts is the one interrupted line, never a traceback
        from tokquant.cli.app import main as run

        run(interrupt=exit_interrupted)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        exit_interrupted()
    # The work is over and every output is whole on disk. Python's teardown (thread
    # joins, atexit handlers, then signal handlers reset to the default) would meet a
    # Ctrl-C as a traceback with exit 0, or as a silent death: end here instead.
    signal.signal(signal.SIGINT, exit_interrupted)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (tokquant ... | head)
            pass
    os._exit(code)
