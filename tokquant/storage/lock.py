"""One writer at a time: an exclusive ``flock`` on a hidden file in the output folder.

Two runs writing into one corpus or export folder both choose the same file names, so
their atomic renames interleave and each can finish with exit 0 while the folder holds
a mix of the two, or one run's files alone. The second run is refused instead, in one
line naming the process that holds the folder. ``flock`` is released by the kernel when
its holder dies (SIGKILL included), so a killed run never leaves a folder locked; the
lock file is removed by its holder when done, and a process that opened it just before
that notices and opens the new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from tokquant.errors import OutputError
from tokquant.storage.atomic import refuse_non_regular


@contextlib.contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold the lock ``path`` (created if missing) for the ``with`` block; raises
    :class:`OutputError` ``busy`` (with the holder's pid and host) if another process
    holds it."""
    path = Path(path)
    while True:
        try:
            # never through a link, never blocking on a FIFO planted at the lock's name
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW's answer for a symbolic link
                refuse_non_regular(path)
            raise OutputError(f"{path.parent}: cannot write ({exc.strerror or exc})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            refuse_non_regular(path)
            raise OutputError(f"{path}: not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise OutputError(f"{busy} ({holder or 'another process'})") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)  # its last holder removed it between our open and our lock: again
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
