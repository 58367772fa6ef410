"""Opening a file a stranger named (in a manifest, a list, a Parquet cell) for reading.

Only a regular file is read. Opening a FIFO blocks until a writer appears (forever, and
past Ctrl-C); a character device such as ``/dev/zero`` never ends; a folder has no bytes.
So the file is opened without blocking (``O_NONBLOCK`` makes ``open`` of a FIFO return at
once), checked with ``fstat`` on the very descriptor that will be read (no window for a
swap between check and read), and refused in one line naming what it is otherwise.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from tokquant.errors import InputError


def what_it_is(mode: int) -> str:
    """A file type in words, for messages."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a regular file"


def _refusal(path: Path, exc: OSError) -> InputError:
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            return InputError(f"{path}: a symbolic link to nothing")
        return InputError(f"{path}: file not found")
    if exc.errno == errno.ELOOP:
        return InputError(f"{path}: a symbolic link loop")
    if exc.errno == errno.EISDIR:
        return InputError(f"{path}: a folder, not a file")
    if exc.errno == errno.ENAMETOOLONG:
        return InputError(f"{str(path)[:60]}…: path is over the system's length limit")
    return InputError(f"{path}: cannot read ({exc.strerror or exc})")


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file (a symbolic link
    to one is read: the user's own links in an input tree are inputs); InputError
    saying what it is otherwise."""
    fd = open_regular_fd(path)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_regular_fd(path: str | Path) -> int:
    """As :func:`open_regular`, a descriptor (for ``pread``: shards, token files)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _refusal(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{path}: {what_it_is(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | Path) -> os.stat_result:
    """The ``stat`` of ``path`` if it is a regular file (opened and checked as
    :func:`open_regular` opens it); InputError saying what it is otherwise."""
    with open_regular(path) as fh:
        return os.fstat(fh.fileno())


def read_regular(path: str | Path) -> bytes:
    """All bytes of a regular file (see :func:`open_regular`)."""
    with open_regular(path) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from another: a file rewritten at the same path
    (in place, or replaced by a rename) differs in inode, size or modification time."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
