"""The folder a job writes into, as one object: token files, a corpus's ranks and an
export's splits all go through :class:`OutputFolder`.

It owns what every output kind needs of its folder: checked (or made) before any work,
one writer at a time where a kind needs that (a lock file), cleared of the temp files
killed runs left, never written through a symbolic link below it, paths within the
system's limits, and on ``overwrite`` only recorded outputs removed (a user's own files
stay). What counts as *done* is each kind's own record, which it hands in: a token
file's header (:meth:`OutputFolder.plan`'s ``reusable``), a rank's manifest part
(:class:`~tokquant.formats.corpus.CorpusWriter`), the export record
(:mod:`tokquant.runners.export.folder`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tokquant.errors import InputError, OutputError, OutputNameError
from tokquant.storage.atomic import not_a_file, remove_stale_temp_files, shorten
from tokquant.storage.lock import exclusive

T = TypeVar("T")


def check_output_file(
    path: Path, overwrite: bool, what: str, inputs: Iterable[Path | None] = ()
) -> None:
    """A single output file (a checkpoint, a vocoder) may be written at ``path``: not a
    folder, not one of the job's ``inputs`` (``overwrite`` or not: replacing what the
    job reads loses it), and not an existing file unless ``overwrite``."""
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; name the {what} file to write")
    check_not_an_input(path, inputs)
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: exists; pass `overwrite=True` to replace it")


def check_not_an_input(path: Path, inputs: Iterable[Path | None]) -> None:
    """InputError when ``path`` is (the same file as) one of ``inputs``."""
    try:
        target = os.stat(path)
    except OSError:
        return  # nothing there yet (or unreachable: the write will say why)
    for source in inputs:
        with contextlib.suppress(OSError):
            if source is not None and os.path.samestat(target, os.stat(source)):
                raise InputError(f"{path}: output path equals an input ({source})")


class OutputFolder:
    """``root`` as the place a job's outputs go."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"OutputFolder({str(self.root)!r})"

    def check(self) -> None:
        """Fail, creating nothing, when the folder is not (and cannot become) a writable
        folder: a file, a symbolic link to nothing or a loop, or under a file or a
        read-only folder."""
        out = self.root
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
                raise OutputError(
                    f"{out}: cannot create the output folder ({parent} is a "
                    f"symbolic link to nothing)"
                ) from None
            if not parent.is_dir():
                raise OutputError(
                    f"{out}: cannot create the output folder ({parent} is not a folder)"
                ) from None
            if not os.access(parent, os.W_OK | os.X_OK) or _immutable(parent):
                raise OutputError(
                    f"{out}: cannot create the output folder ({parent} is not writable)"
                ) from None
            return
        except OSError as exc:
            reason = {
                errno.ELOOP: "is a symbolic link loop",
                errno.ENOTDIR: "a folder on its path is a file",
            }.get(exc.errno)
            raise OutputError(
                f"{out}: {reason or f'cannot be used ({exc.strerror or exc})'}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{out}: exists and is not a folder")
        if not os.access(out, os.W_OK | os.X_OK) or _immutable(out):
            raise OutputError(f"{out}: the output folder is not writable")

    def create(self) -> None:
        """Make the folder, or fail before any work when it cannot be made or written."""
        out = self.root
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{out}: cannot create the output folder ({exc.strerror or exc})"
            ) from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutputError(f"{out}: the output folder is not writable")

    @contextlib.contextmanager
    def hold(self, lock: str, busy: str) -> Iterator[OutputFolder]:
        """The folder made and held by this process through the lock file ``lock`` (a
        second writer is refused with ``busy``), cleared of killed runs' temp files."""
        self.create()
        with exclusive(self.root / lock, busy):
            self.clear_temps()
            yield self

    def clear_temps(self, *folders: str) -> None:
        """Remove the temp files killed runs left in the folder (and in ``folders``
        below it); a live process's are left alone."""
        for folder in (self.root, *(self.root / f for f in folders)):
            remove_stale_temp_files(folder)

    def remove(self, names: Iterable[str], keep: Iterable[str] = ()) -> None:
        """Remove the recorded outputs ``names`` (relative to the folder) but ``keep``,
        and nothing else: a name that leads outside the folder or is not a regular
        file is left where it is."""
        root, kept = self.root.resolve(), set(keep)
        for name in names:
            path = self.root / name
            if name in kept or not path.resolve().parent.is_relative_to(root):
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    path.unlink()

    def linked(self, folder: Path) -> str | None:
        """Why ``folder`` (below the root) cannot hold outputs: one of its folders below
        the root is a symbolic link (an output written there would land wherever it
        points), or None."""
        try:
            parts = folder.relative_to(self.root).parts
        except ValueError:
            return None
        current = self.root
        for part in parts:
            current = current / part
            try:
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    return f"its folder {shorten(str(current))} is a symbolic link, not followed"
            except OSError:  # missing: created as a real folder when written
                return None
        return None

    def file(self, target: Path) -> Path:
        """``target`` (a path below the folder) if an output may be written there: its
        name within the system's limits and no folder below the root a symbolic link;
        an :class:`OutputNameError` naming why otherwise (that output fails alone)."""
        problem = name_too_long(target) or self.linked(target.parent)
        if problem is not None:
            raise OutputNameError(f"{shorten(str(target))}: {problem}")
        return target

    def plan(
        self,
        items: list[T],
        target_of: Callable[[T], Path],
        source_of: Callable[[T], Path | None],
        *,
        overwrite: bool,
        reusable: Callable[[T, Path], str | None] | None = None,
    ) -> tuple[list[tuple[T, Path]], int, list[str]]:
        """``(item, target)`` pairs still to write, how many were skipped as existing, and
        the one-line failures of items whose target cannot exist (too long, a FIFO or link
        where it goes, a folder another output needs as a file). Clears temp files that
        killed runs left in the target folders. An existing target is skipped only where
        ``reusable(item, target)`` finds nothing against it (None); otherwise the run is
        refused, naming why, before anything is written. No folder below the root may be
        a symbolic link: an output is never written through one."""
        plan, skipped, failures = [], 0, []
        folders: dict[Path, str | None] = {}
        for item in items:
            target = target_of(item)
            problem = name_too_long(target)
            if problem is not None:
                failures.append(f"{shorten(str(source_of(item) or target.parent))}: {problem}")
                continue
            if target.parent not in folders:
                folders[target.parent] = self.linked(target.parent)
                if folders[target.parent] is None:
                    remove_stale_temp_files(target.parent)
            if folders[target.parent] is not None:
                failures.append(f"{shorten(str(target))}: {folders[target.parent]}")
                continue
            # A target that does not exist cannot be an input; one that does is compared by
            # inode (one stat each, where resolve() walked every path component: 0.1 ms/file).
            try:
                target_stat = os.lstat(target)
            except OSError:  # missing (or unreachable: the write will say why)
                plan.append((item, target))
                continue
            if not stat.S_ISREG(target_stat.st_mode):
                failures.append(not_a_file(target, target_stat.st_mode))
                continue
            source = source_of(item)
            if (
                source is not None
                and source.exists()
                and os.path.samestat(target_stat, source.stat())
            ):
                raise InputError(f"{target}: output path equals an input")
            if overwrite:
                plan.append((item, target))
                continue
            why = reusable(item, target) if reusable is not None else None
            if why is not None:
                raise InputError(
                    f"{target}: {why}; pass `overwrite=True` to replace such "
                    f"outputs, or choose another `out`"
                )
            skipped += 1
        return _nested_apart(plan, failures), skipped, failures


def _immutable(folder: Path) -> bool:
    """A folder on a read-only mount: root passes every ``os.access`` check there.
    (A ``chattr +i`` folder shows only when written to; the write's error says so.)"""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def name_too_long(path: Path) -> str | None:
    """Why ``path`` cannot be created (a name over the file-name limit, or a whole path
    over the system's), or None."""
    limit = _name_max(path)
    for part in path.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > limit:
            return f"its output name would be {size} bytes, over the file-name limit ({limit})"
    whole = len(os.fsencode(os.path.abspath(path)))
    if whole >= _PATH_MAX:
        return f"its output path would be {whole} bytes, over the system's limit ({_PATH_MAX})"
    return None


#: The longest path the system opens (Linux's PATH_MAX, with its terminating NUL).
_PATH_MAX = 4096


def _name_max(path: Path) -> int:
    for folder in (path.parent, *path.parents):
        try:
            return int(os.pathconf(folder, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255


def _nested_apart(plan: list[tuple[T, Path]], failures: list[str]) -> list[tuple[T, Path]]:
    """The plan without outputs that lie inside a folder another output is a file named
    like (keys ``k`` and ``k.npy/x`` decode to ``k.npy`` and ``k.npy/x.npy``): those
    fail alone, with a short line."""
    files = {target for _, target in plan}
    kept = []
    for item, target in plan:
        clash = next((p for p in target.parents if p in files), None)
        if clash is None:
            kept.append((item, target))
        else:
            failures.append(
                f"{shorten(str(target))}: its folder {shorten(str(clash))} is "
                f"another input's output file"
            )
    return kept
