"""Atomic writes: a reader sees the old file or the complete new one, never a part.

A write goes to a hidden temp file beside the target (same filesystem, so the final
rename is atomic). Temp names are short and fixed-length (``.tq-HOST-PID-N.tmp``), so any
target name that fits the filesystem's limit can be written. A process killed mid-write
leaves its temp file behind; :func:`remove_stale_temp_files` clears those of dead
processes of this host when a later run writes into the same folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from tokquant.errors import OutputError

_counter = itertools.count()
#: This host, in four hex digits: a pid only means something on the host it ran on.
_HOST = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"
_TEMP = re.compile(r"^\.tq-([0-9a-f]{4})-(\d+)-\d+\.tmp$")
#: A temp file of another host counts as stale after this long.
_FOREIGN_STALE_SECONDS = 24 * 3600


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any failure the temporary file is removed.
    """
    path = Path(path)
    # The temp name is chosen before the file exists and the file is created inside the
    # try, so an interrupt (Ctrl-C raises at any bytecode) can never leave a temp file
    # behind that nothing knows to remove.
    tmp_path = path.parent / f".tq-{_HOST}-{os.getpid()}-{next(_counter)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # host + pid + counter is unique among live processes; a file already there can
        # only be the leftover of a killed process whose pid came round again.
        os.close(os.open(tmp_path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # created 0600; outputs are shared data
        os.replace(tmp_path, path)
    except OSError as exc:
        _discard(tmp_path)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _discard(tmp_path)
        raise


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
        names = [e.name for e in os.scandir(folder)
                 if e.name.startswith(".") and e.is_file(follow_symlinks=False)]  # fmt: skip
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
