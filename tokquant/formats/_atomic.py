"""Atomic writes: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tokquant.errors import OutputError

_counter = itertools.count()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file lives in the destination directory (same filesystem, so the rename
    is atomic) under a hidden ``.name.*.tmp`` name; on any failure it is removed.
    """
    path = Path(path)
    # The temp name is chosen before the file exists and the file is created inside the
    # try, so an interrupt (Ctrl-C raises at any bytecode) can never leave a temp file
    # behind that nothing knows to remove.
    tmp_path = path.parent / f".{path.name}.{os.getpid()}.{next(_counter)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # pid + counter is unique among live processes; a file already there can only be
        # the leftover of a killed process whose pid came round again, so truncate it.
        os.close(os.open(tmp_path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # created 0600; outputs are shared data
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
