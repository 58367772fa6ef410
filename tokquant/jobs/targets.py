"""Where a job's outputs go: the output folder, and which inputs still need writing."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tokquant.errors import InputError, OutputError
from tokquant.storage.atomic import remove_stale_temp_files

T = TypeVar("T")


def ensure_output_dir(out: Path) -> None:
    """Fail before any work when the output folder cannot be made or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot create the output folder ({exc.strerror or exc})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: the output folder is not writable")


def check_output_dir(out: Path) -> None:
    """Fail, creating nothing, when ``out`` is not (and cannot become) a writable folder:
    a file, a symbolic link to nothing or a loop, or under a file or a read-only folder."""
    try:
        st = os.stat(out)
    except FileNotFoundError:
        if out.is_symlink():
            raise OutputError(
                f"{out}: is a symbolic link to nothing ({os.readlink(out)})"
            ) from None
        parent = out.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.is_symlink() and not parent.exists():
            raise OutputError(f"{out}: cannot create the output folder ({parent} is a "
                              f"symbolic link to nothing)") from None  # fmt: skip
        if not parent.is_dir():
            raise OutputError(f"{out}: cannot create the output folder ({parent} is not a "
                              f"folder)") from None  # fmt: skip
        if not os.access(parent, os.W_OK | os.X_OK) or _immutable(parent):
            raise OutputError(f"{out}: cannot create the output folder ({parent} is not "
                              f"writable)") from None  # fmt: skip
        return
    except OSError as exc:
        reason = {errno.ELOOP: "is a symbolic link loop",
                  errno.ENOTDIR: "a folder on its path is a file"}.get(exc.errno)  # fmt: skip
        raise OutputError(f"{out}: {reason or f'cannot be used ({exc.strerror or exc})'}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{out}: exists and is not a folder")
    if not os.access(out, os.W_OK | os.X_OK) or _immutable(out):
        raise OutputError(f"{out}: the output folder is not writable")


def _immutable(folder: Path) -> bool:
    """A folder on a read-only mount: root passes every ``os.access`` check there.
    (A ``chattr +i`` folder shows only when written to; the write's error says so.)"""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def name_too_long(path: Path) -> str | None:
    """Why ``path`` cannot be created (a name over the file-name limit), or None."""
    limit = _name_max(path)
    for part in path.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > limit:
            return f"its output name would be {size} bytes, over the file-name limit ({limit})"
    return None


def _name_max(path: Path) -> int:
    for folder in (path.parent, *path.parents):
        try:
            return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255


def plan_outputs(
    items: list[T], target_of: Callable[[T], Path], source_of: Callable[[T], Path | None], *,
    overwrite: bool,
) -> tuple[list[tuple[T, Path]], int, list[str]]:  # fmt: skip
    """``(item, target)`` pairs still to write, how many were skipped as existing, and
    the one-line failures of items whose target cannot exist. Clears temp files that
    killed runs left in the target folders."""
    plan, skipped, failures, folders = [], 0, [], set()
    for item in items:
        target = target_of(item)
        problem = name_too_long(target)
        if problem is not None:
            failures.append(f"{source_of(item) or target.parent}: {problem}")
            continue
        if target.parent not in folders:
            folders.add(target.parent)
            remove_stale_temp_files(target.parent)
        # A target that does not exist cannot be an input; one that does is compared by
        # inode (one stat each, where resolve() walked every path component: 0.1 ms/file).
        try:
            target_stat = target.stat()
        except OSError:  # missing (or unreachable: the write will say why)
            plan.append((item, target))
            continue
        source = source_of(item)
        if source is not None and source.exists() and os.path.samestat(target_stat, source.stat()):
            raise InputError(f"{target}: output path equals an input")
        if not overwrite:
            skipped += 1
            continue
        plan.append((item, target))
    return plan, skipped, failures
