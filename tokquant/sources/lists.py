"""Manifests that name files: fairseq's TSV and anyone's ``key<TAB>path`` list.

A fairseq manifest (``wav2vec_manifest.py``'s output) has the audio root on its first
line, then ``relative/path.flac<TAB>num_samples`` per utterance. Keys are the relative
paths without their suffix, and inputs keep the manifest's order, so ``export --to km``
writes its lines in the order fairseq's ``.km`` readers expect. A ``key<TAB>path`` list
keys each file by the key given, kept whole. In both, a file that is missing fails that
utterance alone; a malformed line stops the run before anything is written, naming its
line number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tokquant.errors import InputError
from tokquant.sources.base import FileSource, Source, first_line, manifest_lines
from tokquant.sources.files import LIST_SUFFIXES


@dataclass(frozen=True)
class NamedFile(FileSource):
    """A file keyed by a name its manifest gave it (not by its path)."""

    keyed_by_name: ClassVar[bool] = True

    def stem(self, suffixes: tuple[str, ...]) -> Path:
        return self.key

    def channel_key(self, channel: int) -> Path:
        return Source.channel_key(self, channel)


def is_fairseq_tsv(path: Path) -> bool:
    """A ``.tsv`` whose first line is a root folder (no tab): the rest must then be
    ``path<TAB>count`` lines (checked line by line as it is read)."""
    if not (path.is_file() and path.suffix.lower() == ".tsv"):
        return False
    first = first_line(path)
    # a '#' line is a comment: fairseq's root is a folder, and a commented list is ours
    return bool(first) and "\t" not in first and not first.startswith("#")


def read_fairseq_tsv(path: Path) -> list[Source]:
    lines = manifest_lines(path)
    root = Path(lines[0].strip())
    if not root.is_absolute():
        root = path.parent / root if not root.is_dir() else root
    out: list[Source] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].strip().isdigit() or not fields[0]:
            raise InputError(
                f"{path}:{number}: expected 'relative/path<TAB>num_samples', found {line!r}"
            )
        relative = Path(fields[0])
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"{path}:{number}: {fields[0]} is not a path inside the root")
        out.append(FileSource(key=relative, file=root / relative))
    if not out:
        raise InputError(f"{path}: the manifest lists no audio")
    return out


def is_keyed_list(path: Path) -> bool:
    """A list file whose first entry is ``key<TAB>path``."""
    if not (path.is_file() and path.suffix.lower() in (*LIST_SUFFIXES, ".tsv")):
        return False
    return first_line(path, entries_only=True).count("\t") == 1


def read_keyed_list(path: Path) -> list[Source]:
    out: list[Source] = []
    for number, line in enumerate(manifest_lines(path), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise InputError(f"{path}:{number}: expected 'key<TAB>path', found {line!r}")
        file = Path(fields[1].strip())
        out.append(
            NamedFile(
                key=Path(fields[0].strip()), file=file if file.is_absolute() else path.parent / file
            )
        )
    if not out:
        raise InputError(f"{path}: the list names no files")
    return out
