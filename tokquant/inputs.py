"""Expand what users type (files, folders, list files) into an ordered list of inputs.

Each input carries a ``key``: its path relative to the folder or list it came from (or its
bare name when given directly), which outputs mirror under ``--out``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokquant.errors import InputError

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class InputItem:
    """One input: its path, the key its outputs mirror, and (audio) the channel to use."""

    path: Path
    key: Path
    channel: int | None = None


def _matches(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def expand_inputs(
    specs: list[str | Path],
    suffixes: tuple[str, ...],
    what: str,
    *,
    outputs: bool = True,
) -> list[InputItem]:
    """Files as given, folders searched recursively by suffix, list files line by line.

    A file reached twice counts once. Raises InputError for a missing path, a folder or
    list with no inputs, or (when ``outputs``: the inputs are mirrored to output files)
    two different files that would write the same output.
    """
    items: list[InputItem] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _matches(p, suffixes))
            found = [p for p in found if not p.name.startswith(".")]
            if not found:
                raise InputError(f"{path}: no {what} files ({', '.join(suffixes)}) in this folder")
            items += [InputItem(p, p.relative_to(path)) for p in found]
        elif (
            path.is_file() and path.suffix.lower() in LIST_SUFFIXES and not _matches(path, suffixes)
        ):
            items += _read_list(path, suffixes, what)
        elif path.is_file():
            if not _matches(path, suffixes):
                raise InputError(f"{path}: not a {what} file (expected {', '.join(suffixes)})")
            items.append(InputItem(path, Path(path.name)))
        else:
            raise InputError(f"{path}: no such file or folder")
    if not items:
        raise InputError(f"no {what} inputs given")
    # The same file reached twice (named and inside a named folder) counts once.
    unique: dict[Path, InputItem] = {}
    for item in items:
        unique.setdefault(item.path.resolve(), item)
    items = list(unique.values())
    seen: dict[Path, Path] = {}
    for item in items if outputs else []:
        stem = strip_suffix(item.key, suffixes)
        if stem in seen:
            raise InputError(
                f"{seen[stem]} and {item.path} would write the same output ({stem}); "
                f"pass their folder instead"
            )
        seen[stem] = item.path
    return items


def _read_list(path: Path, suffixes: tuple[str, ...], what: str) -> list[InputItem]:
    base = path.parent
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry)
        full = p if p.is_absolute() else base / p
        if not full.is_file():
            raise InputError(f"{path}:{number}: {entry}: no such file")
        if not _matches(full, suffixes):
            raise InputError(f"{path}:{number}: {entry}: not a {what} file")
        try:
            key = full.resolve().relative_to(base.resolve())
        except ValueError:
            key = Path(full.name)
        items.append(InputItem(full, key))
    if not items:
        raise InputError(f"{path}: list file names no {what} files")
    return items


def strip_suffix(key: Path, suffixes: tuple[str, ...]) -> Path:
    name = key.name
    for s in sorted(suffixes, key=len, reverse=True):
        if name.lower().endswith(s):
            return key.with_name(name[: -len(s)])
    return key


def output_path(
    out_dir: Path, item: InputItem, in_suffixes: tuple[str, ...], out_suffix: str
) -> Path:
    stem = strip_suffix(item.key, in_suffixes)
    return out_dir / stem.with_name(stem.name + out_suffix)


def split_channels(items: list[InputItem], channels_of: Callable[[Path], int]) -> list[InputItem]:
    """One item per channel, keyed ``NAME.chC.EXT`` so each channel gets its own output.

    A file whose channel count cannot be read stays one item; encoding it reports why.
    """
    out = []
    for item in items:
        try:
            count = channels_of(item.path)
        except InputError:
            out.append(item)
            continue
        for c in range(count):
            key = item.key.with_name(f"{item.key.stem}.ch{c}{item.key.suffix}")
            out.append(InputItem(item.path, key, c))
    return out
