"""Atomic writes: a reader sees the old file or the complete new one, never a part.

A write goes to a hidden temp file beside the target (same filesystem, so the final
rename is atomic). Temp names are short and fixed-length (``.tq-HOST-PID-N.tmp``), so any
target name that fits the filesystem's limit can be written. A process killed mid-write
leaves its temp file behind; :func:`remove_stale_temp_files` clears those of dead
processes of this host when a later run writes into the same folder.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
import socket
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from tokquant.errors import OutputError, OutputNameError
from tokquant.storage.regular import what_it_is

_counter = itertools.count()
#: This host, in four hex digits: a pid only means something on the host it ran on.
_HOST = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"
_TEMP = re.compile(r"^\.tq-([0-9a-f]{4})-(\d+)-\d+\.tmp$")
#: A temp file of another host counts as stale after this long.
_FOREIGN_STALE_SECONDS = 24 * 3600


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any failure the temporary file is removed. Nothing is written through a link: the
    temp file is created new (``O_EXCL|O_NOFOLLOW``: a planted file or symbolic link of
    that name is stepped over, never opened), its mode is set on its own descriptor, and
    an existing ``path`` that is not a regular file (a symbolic link, a FIFO, a folder)
    is refused, not replaced.
    """
    path = Path(path)
    # The temp name is chosen before the file exists and the file is created inside the
    # try, so an interrupt (Ctrl-C raises at any bytecode) can never leave a temp file
    # behind that nothing knows to remove.
    tmp_path = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_non_regular(path)
        for _ in range(_TEMP_TRIES):
            try:
                os.close(os.open(tmp_path, _CREATE, 0o600))
                break
            except FileExistsError:  # a killed run's leftover, or a planted link: not ours
                tmp_path = _temp_name(path, secrets.randbits(62))  # no name to plant ahead
        else:
            raise OutputError(f"{path.parent}: cannot create a temp file (every name taken)")
        yield tmp_path
        fd = os.open(tmp_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced while we wrote
                raise OutputError(f"{tmp_path}: was replaced by another file while written")
            os.fsync(fd)
            os.fchmod(fd, 0o666 & ~_umask())  # created 0600; outputs are shared data
        finally:
            os.close(fd)
        refuse_non_regular(path)
        os.replace(tmp_path, path)
    except OSError as exc:
        # removed whatever the failure (unlink never follows a link): the name is ours,
        # or one an interrupt caught before the next name was chosen
        _discard(tmp_path)
        if isinstance(exc, OutputError):
            raise
        # where this one output cannot go (a file in place of its folder, a path over
        # the limit) it fails alone; a full disk or a read-only folder stops the run
        kind = OutputNameError if exc.errno in _NAME_ERRNOS else OutputError
        raise kind(f"{shorten(str(path))}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _discard(tmp_path)
        raise


#: Errors that say one output's path cannot exist, not that nothing can be written.
_NAME_ERRNOS = (errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG)


def shorten(path: str, keep: int = 60) -> str:
    """A path short enough for a one-line message (its start and end)."""
    return path if len(path) <= 2 * keep + 1 else f"{path[:keep]}…{path[-keep:]}"


#: How the temp file is made: new, never through a link, not inherited by children.
_CREATE = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC
#: Names tried before giving up (each taken one is another process's or planted).
_TEMP_TRIES = 100


def _temp_name(path: Path, number: int | None = None) -> Path:
    number = next(_counter) if number is None else number
    return path.parent / f".tq-{_HOST}-{os.getpid()}-{number}.tmp"


def refuse_non_regular(path: Path) -> None:
    """OutputError when ``path`` exists and is not a regular file: tokquant replaces
    only files, never a symbolic link (whose target it would be trusting), a FIFO or a
    folder that happens to sit where an output goes."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OutputNameError(not_a_file(path, mode))


def not_a_file(path: Path, mode: int) -> str:
    """The one line for an output path held by something that is not a regular file
    (``mode`` from ``lstat``), whoever finds it first: the planner or the writer."""
    return (
        f"{shorten(str(path))}: exists and is {what_it_is(mode)}, not a regular file; "
        f"tokquant replaces only files (remove it or choose another output)"
    )


def _discard(tmp_path: Path) -> None:
    """Remove a temp file, if there is one: where the folder could not be made (its
    parent is a file) or written (read-only), removing raises too, and that second error
    must not hide the first."""
    with contextlib.suppress(OSError):
        tmp_path.unlink()


def remove_stale_temp_files(folder: Path) -> int:
    """Remove temp files that killed tokquant processes left in ``folder``; returns how
    many. Files of live processes (another rank writing here) are left alone."""
    removed = 0
    try:
        names = [
            e.name
            for e in os.scandir(folder)
            if e.name.startswith(".") and e.is_file(follow_symlinks=False)
        ]
    except OSError:
        return 0
    for name in names:
        if _is_stale(Path(folder) / name):
            with contextlib.suppress(OSError):
                os.unlink(Path(folder) / name)
                removed += 1
    return removed


def _is_stale(path: Path) -> bool:
    match = _TEMP.match(path.name)
    if not match:  # a user's own hidden file, whatever it looks like
        return False
    host, pid = match.group(1), int(match.group(2))
    if host != _HOST:
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > _FOREIGN_STALE_SECONDS
        return False
    return pid != os.getpid() and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
