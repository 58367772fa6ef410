"""WebDataset shards: tar files (or a brace pattern of them, ``shards-{000..099}.tar``)
whose members group into samples by key, as webdataset groups them.

A member ``dir/utt-1.flac`` belongs to sample ``dir/utt-1`` (the name up to the first dot
of its base name) and is its ``flac`` field. Each sample's audio is the field named by
``--audio-member`` (default: the first of :data:`AUDIO_FIELDS` present); the key is the
sample key. A tar's headers are read once to find where each member's bytes lie; an
input then reads just its member's bytes (no extraction, no temp files), so ranks split
by tar file read disjoint bytes. Compressed tars (``.tar.gz``) cannot be read at an
offset and are refused: webdataset's writers leave shards uncompressed.
"""

from __future__ import annotations

import glob
import io
import itertools
import os
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokquant.audio.io import AudioReader
from tokquant.errors import InputError
from tokquant.sources.base import Failed, Source
from tokquant.sources.files import walk_files
from tokquant.sources.hf import first_data_file
from tokquant.storage.regular import identity, open_regular

#: Audio fields tried in this order when ``--audio-member`` is not given.
AUDIO_FIELDS = ("flac", "wav", "mp3", "opus", "ogg", "m4a", "sph")
#: Members up to this size are read whole; larger ones stream (memory stays bounded).
WHOLE_MEMBER_BYTES = 32 << 20
#: Tar files one pattern may name, at most (counted before anything is expanded).
MAX_TARS = 100_000
COMPRESSED_TARS = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")
_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"([0-9]+)\.\.([0-9]+)")
_BLOCK = tarfile.BLOCKSIZE


def expand_braces(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` -> ``a-000.tar a-001.tar a-002.tar``; ``{x,y}`` lists too (the
    two forms webdataset's ``braceexpand`` patterns use for shard lists). The names are
    counted first: a pattern of more than :data:`MAX_TARS` is refused before one is made."""
    parts: list[Any] = []  # literal texts, name lists, (start, stop, step, width) ranges
    position = 0
    count = 1
    for match in _BRACE.finditer(pattern):
        parts.append([pattern[position : match.start()]])
        body = match.group(1)
        ranged = _RANGE.fullmatch(body)
        if ranged:
            lo, hi = ranged.groups()
            width = len(lo) if lo.startswith("0") else 0
            if max(len(lo), len(hi)) > 18:
                raise InputError(f"{pattern}: brace range {body} is too large")
            step = 1 if int(hi) >= int(lo) else -1
            parts.append((int(lo), int(hi) + step, step, width))
            count *= abs(int(hi) - int(lo)) + 1
        else:
            parts.append(body.split(","))
            count *= len(parts[-1])
        if count > MAX_TARS:
            raise InputError(
                f"{pattern}: names more than {MAX_TARS:,} tar files "
                f"(brace patterns are counted before they are expanded)"
            )
        position = match.end()
    parts.append([pattern[position:]])
    lists = [
        [str(i).zfill(p[3]) for i in range(*p[:3])] if isinstance(p, tuple) else p for p in parts
    ]
    return ["".join(p) for p in itertools.product(*lists)]


def is_webdataset(spec: str) -> bool:
    name = spec.lower()
    return name.endswith(".tar") or (_BRACE.search(spec) is not None and ".tar" in name)


def is_compressed_tar(spec: str) -> bool:
    return spec.lower().endswith(COMPRESSED_TARS)


def tar_paths(spec: str) -> list[Path]:
    """The tar files an input names: a brace pattern (``{000..009}``), a glob pattern
    that the shell did not expand (``'shards/*.tar'``, sorted), or a folder (every
    ``.tar`` under it, sorted)."""
    if Path(spec).is_dir():
        found = sorted(p for p in walk_files(Path(spec)) if p.name.lower().endswith(".tar"))
        if not found:
            raise InputError(f"{spec}: a folder with no .tar files in it")
        return found
    out: list[Path] = []
    for name in expand_braces(spec):
        if glob.has_magic(name) and not os.path.lexists(name):
            matched = sorted(glob.glob(name))
            if not matched:
                raise InputError(f"{name}: no tar file matches this pattern")
            out += [Path(m) for m in matched]
        else:
            out.append(Path(name))
        if len(out) > MAX_TARS:
            raise InputError(f"{spec}: names more than {MAX_TARS:,} tar files")
    return out


def is_tar_folder(path: Path) -> bool:
    """A folder whose first data file (as :func:`tokquant.sources.hf.first_data_file`
    finds it) is a tar: WebDataset shards kept in a folder."""
    return path.is_dir() and first_data_file(path) == ".tar"


class _MemberFile(io.RawIOBase):
    """A read-only, seekable file over bytes ``[offset, offset + size)`` of an open file:
    a member is decoded in place, read in the pieces the decoder asks for (a member
    whose header claims 40 GB costs no more memory than any other)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd, self._offset, self._size, self._pos = fd, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = max(0, min(len(buffer), self._size - self._pos))
        data = os.pread(self._fd, want, self._offset + self._pos) if want else b""
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass(frozen=True)
class TarMember(Source):
    """One member's bytes in an uncompressed tar, read at their offset. ``identity`` is
    the tar's (device, inode, size, mtime) when it was indexed: a tar replaced since then
    is refused, not read at the old offsets (which would swap audio between keys)."""

    tar: Path = field(kw_only=True)
    member: str = field(kw_only=True)
    offset: int = field(kw_only=True)
    size: int = field(kw_only=True)
    identity: tuple[int, ...] | None = field(kw_only=True, default=None)

    @property
    def origin(self) -> str:
        return f"{self.tar}:{self.member}"

    @property
    def unit(self) -> object:
        return self.tar

    @contextmanager
    def _opened(self) -> Iterator[_MemberFile]:
        with open_regular(self.tar) as fh:
            st = os.fstat(fh.fileno())
            if self.identity is not None and identity(st) != self.identity:
                raise InputError(
                    f"{self.origin}: the tar changed since it was indexed "
                    f"(rewritten during the run?)"
                )
            if self.offset + self.size > st.st_size:
                raise InputError(f"{self.origin}: the tar ends inside this member (truncated?)")
            yield _MemberFile(fh.fileno(), self.offset, self.size)

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        with self._opened() as member:
            # an utterance is read in one pread and decoded from memory; a member larger
            # than that is decoded from the tar in the pieces libsndfile asks for
            source = member.read() if self.size <= WHOLE_MEMBER_BYTES else member
            with AudioReader.from_bytes(source, self.origin) as reader:  # type: ignore[arg-type]
                yield reader

    def fetch(self) -> bytes:
        """The member's bytes, whole."""
        with self._opened() as member:
            return member.read()


def sample_key(name: str) -> tuple[str, str] | None:
    """``(key, field)`` of a member name as webdataset splits it (None: no field)."""
    folder, _, base = name.rpartition("/")
    stem, dot, extension = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{folder}/{stem}" if folder else stem), extension


def read_webdataset(spec: str, audio_member: str | None = None) -> list[Source]:
    """Every sample of the tars ``spec`` names, tar by tar, in member order."""
    if audio_member is not None and not audio_member.strip("."):
        raise InputError(
            f"`audio_member` must name a field (flac, wav, seg.flac, ...), found {audio_member!r}"
        )
    return [s for tar in tar_paths(spec) for s in _samples(tar, audio_member)]


@dataclass
class TarIndex:
    """A tar's members from its headers alone: each sample key's fields (lower-cased)
    with their ``TarInfo``, the members that cannot be read exactly at an offset
    (``refused``: key -> why), and the tar's identity when indexed."""

    fields: dict[str, dict[str, tarfile.TarInfo]]
    refused: dict[str, str]
    identity: tuple[int, ...]
    #: Every sample key, in the order its first member appears.
    keys: list[str]


def _unreadable(info: tarfile.TarInfo) -> str | None:
    """Why a member cannot be read exactly at its offset (None: it can)."""
    if info.issparse():
        return (
            f"{info.name} is a sparse member (tar --sparse), whose bytes are not stored "
            f"in order; write the tar without --sparse"
        )
    if info.islnk():
        return (
            f"{info.name} is a hard link to {info.linkname}; write the tar with "
            f"--hard-dereference so each member holds its bytes"
        )
    if info.issym():
        return f"{info.name} is a symbolic link member, which tokquant does not follow"
    if not info.isfile() and not info.isdir():
        return f"{info.name} is not a regular file member"
    return None


def index_tar(tar: Path, split: Any = None) -> TarIndex:
    """Index every member of ``tar`` by ``split(name) -> (key, field) | None`` (default
    :func:`sample_key`), reading headers only. Concatenated archives (``cat a.tar b.tar``)
    are read to the end, as GNU tar ``-i`` reads them. A field seen twice under one key
    (``a.flac`` twice, or ``a.flac`` and ``a.FLAC``) fails that key: which is meant
    cannot be known."""
    split = split or sample_key
    fields: dict[str, dict[str, tarfile.TarInfo]] = {}
    refused: dict[str, str] = {}
    keys: dict[str, None] = {}
    with open_regular(tar) as fh:
        st = os.fstat(fh.fileno())
        for info in _members(fh, tar, st.st_size):
            parts = split(info.name) if not info.isdir() else None
            if parts is None:
                continue
            key, name = parts[0], parts[1].lower()
            keys.setdefault(key)
            problem = _unreadable(info)
            if problem is not None:
                refused.setdefault(key, problem)
            elif name in fields.get(key, {}):
                refused.setdefault(
                    key,
                    f"member {parts[1]!r} of sample {key!r} appears twice in "
                    f"the tar (duplicate key)",
                )
            else:
                fields.setdefault(key, {})[name] = info
    return TarIndex(fields, refused, identity(st), list(keys))


def _members(fh: Any, tar: Path, size: int) -> Iterator[tarfile.TarInfo]:
    """Every member of every archive in the file, in order."""
    start = 0
    while start < size:
        fh.seek(start)
        seen = 0
        try:
            with tarfile.open(fileobj=fh, mode="r:") as archive:
                for info in archive:
                    seen += 1
                    yield info
                end = archive.offset  # where its end-of-archive blocks begin
        except tarfile.ReadError as exc:
            if seen and "unexpected end of data" in str(exc):
                return  # the file ends inside its last member, which fails alone when read
            if start == 0:
                raise InputError(f"{tar}: not an uncompressed tar file ({exc})") from None
            end = start
        if end == start and start > 0:  # tarfile stops without a word at a bad header
            raise InputError(
                f"{tar}: bytes at offset {start} are not a tar header (a damaged "
                f"or truncated archive)"
            )
        start = _next_archive(fh, end, size)


def _next_archive(fh: Any, end: int, size: int) -> int:
    """Where another archive starts after an end-of-archive at ``end`` (zero blocks up to
    it; ``size`` when none follows)."""
    fh.seek(end)
    position = end
    while position < size:
        chunk = fh.read(min(1 << 20, size - position))
        if not chunk:
            break
        stripped = chunk.lstrip(b"\0")
        if stripped:
            first = position + len(chunk) - len(stripped)
            return first - first % _BLOCK
        position += len(chunk)
    return size


def _pick(members: dict[str, tarfile.TarInfo], audio_member: str | None) -> str | None:
    """The audio field: the one named (whole, as webdataset names fields: the part after
    the key's first dot), else the first of :data:`AUDIO_FIELDS` present, else a field
    whose last part is one (``seg.flac`` is a flac, as webdataset's decoders see it)."""
    if audio_member:
        wanted = audio_member.lower().lstrip(".")
        return wanted if wanted in members else None
    exact = next((w for w in AUDIO_FIELDS if w in members), None)
    if exact is not None:
        return exact
    return next((f for w in AUDIO_FIELDS for f in members if f.endswith(f".{w}")), None)


def _samples(tar: Path, audio_member: str | None) -> list[Source]:
    index = index_tar(tar)
    out: list[Source] = []
    for key in index.keys:
        where = f"{tar}:{key}"
        if key in index.refused:
            out.append(Failed(key=Path(key), where=where, message=index.refused[key]))
            continue
        members = index.fields[key]
        name = _pick(members, audio_member)
        if name is None:
            wanted = audio_member.lower().lstrip(".") if audio_member else " or ".join(AUDIO_FIELDS)
            out.append(
                Failed(
                    key=Path(key),
                    where=where,
                    message=f"no {wanted} member (has {', '.join(sorted(members))})",
                )
            )
            continue
        info = members[name]
        out.append(
            TarMember(
                key=Path(key),
                tar=tar,
                member=info.name,
                offset=info.offset_data,
                size=info.size,
                identity=index.identity,
            )
        )
    if not out:
        raise InputError(f"{tar}: holds no samples")
    return out
