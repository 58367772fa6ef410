"""Where a job's outputs go: the output folder, and which inputs still need writing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tokquant.errors import InputError, OutputError
from tokquant.formats._atomic import remove_stale_temp_files
from tokquant.jobs.sources import InputItem

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


def item_source(item: InputItem) -> Path:
    return item.path
