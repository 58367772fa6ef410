"""Inputs users type (files, folders, list files) expanded into ordered
:class:`~tokquant.sources.base.FileSource` s, and the keys their outputs mirror.

A file's key is its path relative to the folder or list it came from (or its bare name
when given directly). Folder searches never pick up tokquant's own outputs (token files,
corpus shards and manifests), so ``--out`` may be the input folder and a re-run still
sees only the real inputs.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokquant.errors import InputError
from tokquant.formats.corpus import is_corpus_file
from tokquant.formats.tokens import SUFFIX as TOKENS_SUFFIX
from tokquant.sources.base import FileSource, Source, manifest_lines, strip_suffix, text_lines
from tokquant.storage.atomic import shorten
from tokquant.storage.regular import what_it_is

LIST_SUFFIXES = (".txt", ".lst", ".list")
#: An input named ``-``: a list of paths read from standard input.
STDIN = Path("-")


def _matches(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _is_own_output(path: Path, suffixes: tuple[str, ...]) -> bool:
    """A token file or corpus file, unless token files are what is being searched for."""
    if TOKENS_SUFFIX in suffixes:
        return False
    return path.name.lower().endswith(TOKENS_SUFFIX) or is_corpus_file(path)


def expand_inputs(
    specs: list[str | Path],
    suffixes: tuple[str, ...],
    what: str,
    *,
    outputs: bool = True,
) -> list[FileSource]:
    """Files as given, folders searched recursively by suffix, list files line by line.

    A file reached twice counts once. Raises InputError for a missing path, a folder or
    list with no inputs, or (when ``outputs``: the inputs are mirrored to output files)
    two different files that would write the same output.
    """
    items: list[FileSource] = []
    for spec in specs:
        path = Path(spec)
        if path == STDIN:  # `-`: the list comes on standard input (`find ... | tokquant`)
            items += _read_list(STDIN, suffixes, what)
        elif path.is_dir():
            # audio libsndfile cannot decode (m4a, aac, ...) is listed, to fail with the
            # reason, rather than left out of the run without a word
            unreadable = UNREADABLE_AUDIO if what == "audio" else ()
            found = sorted(
                p for p in walk_files(path) if _matches(p, suffixes) or _matches(p, unreadable)
            )
            found = [
                p for p in found if not p.name.startswith(".") and not _is_own_output(p, suffixes)
            ]
            if not found:
                raise InputError(f"{path}: no {what} files ({', '.join(suffixes)}) in this folder")
            items += [
                (FileSource if _matches(p, suffixes) else UnreadableAudio)(
                    key=p.relative_to(path), file=p
                )
                for p in found
            ]
        elif (
            path.is_file() and path.suffix.lower() in LIST_SUFFIXES and not _matches(path, suffixes)
        ):
            items += _read_list(path, suffixes, what)
        elif path.is_file():
            if not _matches(path, suffixes):
                raise InputError(
                    f"{path}: not {_article(what)} {what} file (expected {', '.join(suffixes)}, "
                    f"a folder of them, or a list file ({', '.join(LIST_SUFFIXES)}) of their "
                    f"paths, one per line)"
                )
            items.append(FileSource(key=Path(path.name), file=path))
        else:
            raise InputError(f"{path}: {_not_an_input(path)}")
    if not items:
        raise InputError(f"no {what} inputs given")
    # The same file reached twice (named and inside a named folder) counts once.
    unique: dict[Path, FileSource] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    items = list(unique.values())
    seen: dict[Path, Path] = {}
    for item in items if outputs else []:
        stem = strip_suffix(item.key, suffixes)
        if stem in seen:
            # Named one by one, their folder keeps their paths apart; within one folder
            # only another name can.
            advice = (
                "rename one of them"
                if seen[stem].parent == item.path.parent
                else "pass their folder instead"
            )
            raise InputError(
                f"{seen[stem]} and {item.path} would write the same output ({stem}); {advice}"
            )
        seen[stem] = item.path
    return items


#: Audio that libsndfile (so tokquant) cannot decode: such files in a folder fail alone.
UNREADABLE_AUDIO = (".m4a", ".aac", ".mp4", ".wma", ".amr", ".webm")


@dataclass(frozen=True)
class UnreadableAudio(FileSource):
    """A file in an input folder whose kind of audio tokquant cannot read."""

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        raise InputError(
            f"{self.file}: {self.file.suffix.lstrip('.')} audio cannot be read "
            f"(libsndfile has no AAC/MP4 decoder); convert it to flac or wav"
        )
        yield

    def audio_length(self) -> tuple[int, int] | None:
        return None

    def channels(self) -> int:
        raise InputError(f"{self.file}: cannot be read")


def walk_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` (symlinked files included, symlinked folders not
    entered, as ``rglob`` does), walked with a stack instead of recursion, so a tree
    1,000 levels deep is read like any other. A path over the system's length limit
    (PATH_MAX) cannot be opened at all: InputError naming it."""
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                listed = list(entries)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InputError(
                    f"{shorten(current)}: path is over the system's length "
                    f"limit ({len(os.fsencode(current))} bytes)"
                ) from None
            raise InputError(
                f"{shorten(current)}: cannot list folder ({exc.strerror or exc})"
            ) from None
        for entry in listed:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file():
                    yield Path(entry.path)
            except OSError:  # a dangling or looping link is no input
                continue


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _not_an_input(path: Path) -> str:
    """Why ``path``, neither a file nor a folder, was refused."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink():
            return f"a symbolic link to nothing ({os.readlink(path)})"
        if exc.errno == errno.ENOENT:
            return "no such file or folder"
        return f"cannot be read ({exc.strerror or exc})"
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    return f"{what_it_is(mode)}, not a regular file or folder"


def _read_list(path: Path, suffixes: tuple[str, ...], what: str) -> list[FileSource]:
    """A list file's paths, one per line (``#`` comments). An entry inside the list's
    folder is keyed by its path from there; entries outside it by their paths from the
    deepest folder that holds all of them, so entries of one list never collide because
    of their folders (``/a/x.wav`` and ``/b/x.wav`` are ``a/x.wav`` and ``b/x.wav``)."""
    base = Path.cwd() if path == STDIN else path.parent
    found: list[tuple[Path, Path | None]] = []
    lines = _stdin_lines() if path == STDIN else manifest_lines(path)
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry)
        full = p if p.is_absolute() else base / p
        if not full.is_file():
            raise InputError(f"{path}:{number}: {entry}: {_not_an_input(full)}")
        if not _matches(full, suffixes):
            raise InputError(f"{path}:{number}: {entry}: not {_article(what)} {what} file")
        try:
            found.append((full, full.resolve().relative_to(base.resolve())))
        except ValueError:
            found.append((full, None))
    if not found:
        raise InputError(f"{path}: list file names no {what} files")
    outside = [full.resolve() for full, key in found if key is None]
    root = Path(os.path.commonpath([p.parent for p in outside])) if outside else None
    return [
        FileSource(key=key if key is not None else full.resolve().relative_to(root), file=full)
        for full, key in found
    ]


def _stdin_lines() -> list[str]:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    return text_lines(data, "-")


def output_path(out_dir: Path, stem: Path, out_suffix: str) -> Path:
    """Where the output named after ``stem`` (an input's :meth:`Source.stem`, a token
    file's key without its suffix) goes under ``out_dir``."""
    return out_dir / stem.with_name(stem.name + out_suffix)


def split_channels(items: list[Source], channels_of: Callable[[Source], int]) -> list[Source]:
    """One item per channel, keyed ``NAME.chC.EXT`` so each channel gets its own output.

    A file whose channel count cannot be read stays one item; encoding it reports why.
    """
    out = []
    for item in items:
        try:
            count = channels_of(item)
        except InputError:
            out.append(item)
            continue
        out += [item.with_channel(c, item.channel_key(c)) for c in range(count)]
    return out
