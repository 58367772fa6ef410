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

import itertools
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tokquant.errors import InputError
from tokquant.sources.base import Source
from tokquant.sources.blobs import BlobSource

#: Audio fields tried in this order when ``--audio-member`` is not given.
AUDIO_FIELDS = ("flac", "wav", "mp3", "opus", "ogg", "m4a", "sph")
_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` -> ``a-000.tar a-001.tar a-002.tar``; ``{x,y}`` lists too (the
    two forms webdataset's ``braceexpand`` patterns use for shard lists)."""
    parts: list[list[str]] = []
    position = 0
    for match in _BRACE.finditer(pattern):
        parts.append([pattern[position : match.start()]])
        body = match.group(1)
        ranged = re.fullmatch(r"(\d+)\.\.(\d+)", body)
        if ranged:
            lo, hi = ranged.groups()
            width = len(lo) if lo.startswith("0") else 0
            step = 1 if int(hi) >= int(lo) else -1
            parts.append([str(i).zfill(width) for i in range(int(lo), int(hi) + step, step)])
        else:
            parts.append(body.split(","))
        position = match.end()
    parts.append([pattern[position:]])
    return ["".join(p) for p in itertools.product(*parts)]


def is_webdataset(spec: str) -> bool:
    name = spec.lower()
    return name.endswith(".tar") or (_BRACE.search(spec) is not None and ".tar" in name)


@dataclass(frozen=True)
class TarMember(BlobSource):
    """One member's bytes in an uncompressed tar."""

    tar: Path = field(kw_only=True)
    member: str = field(kw_only=True)
    offset: int = field(kw_only=True)
    size: int = field(kw_only=True)

    @property
    def origin(self) -> str:
        return f"{self.tar}:{self.member}"

    @property
    def unit(self) -> object:
        return self.tar

    def fetch(self) -> bytes:
        try:
            with open(self.tar, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(self.size)
        except OSError as exc:
            raise InputError(f"{self.origin}: cannot read ({exc.strerror or exc})") from None
        if len(data) != self.size:
            raise InputError(f"{self.origin}: the tar ends inside this member (truncated?)")
        return data


def sample_key(name: str) -> tuple[str, str] | None:
    """``(key, field)`` of a member name as webdataset splits it (None: no field)."""
    folder, _, base = name.rpartition("/")
    stem, dot, extension = base.partition(".")
    if not dot or not stem:
        return None
    return (f"{folder}/{stem}" if folder else stem), extension


def read_webdataset(spec: str, audio_member: str | None = None) -> list[Source]:
    """Every sample of the tars ``spec`` names, tar by tar, in member order."""
    tars = [Path(p) for p in expand_braces(spec)]
    missing = [t for t in tars if not t.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"{missing[0]}: no such tar file{more}")
    return [s for tar in tars for s in _samples(tar, audio_member)]


def tar_samples(tar: Path) -> dict[str, dict[str, tarfile.TarInfo]]:
    """Each sample key's fields (lower-cased) and where their bytes lie, in member order,
    from the tar's headers alone (the first member of a field wins)."""
    fields: dict[str, dict[str, tarfile.TarInfo]] = {}
    try:
        with tarfile.open(tar, "r:") as archive:
            for info in archive:
                split = sample_key(info.name) if info.isfile() else None
                if split is not None:
                    fields.setdefault(split[0], {}).setdefault(split[1].lower(), info)
    except tarfile.ReadError as exc:
        raise InputError(f"{tar}: not an uncompressed tar file ({exc})") from None
    except OSError as exc:
        raise InputError(f"{tar}: cannot read ({exc.strerror or exc})") from None
    return fields


def _samples(tar: Path, audio_member: str | None) -> list[Source]:
    fields = tar_samples(tar)
    wanted = (audio_member.lower().lstrip("."),) if audio_member else AUDIO_FIELDS
    out: list[Source] = []
    for key, members in fields.items():
        # a field named "seg.flac" is a flac too: webdataset's decoders go by the last part
        name = next((f for w in wanted for f in members if f == w or f.endswith(f".{w}")), None)
        if name is None:
            out.append(_Missing(key=Path(key), where=f"{tar}:{key}",
                                message=f"no {' or '.join(wanted)} member "
                                        f"(has {', '.join(sorted(members))})"))  # fmt: skip
            continue
        info = members[name]
        out.append(TarMember(key=Path(key), tar=tar, member=info.name,
                             offset=info.offset_data, size=info.size))  # fmt: skip
    if not out:
        raise InputError(f"{tar}: holds no samples")
    return out


@dataclass(frozen=True)
class _Missing(BlobSource):
    """A sample without an audio field: it fails alone, with the reason."""

    where: str = field(kw_only=True)
    message: str = field(kw_only=True)

    @property
    def origin(self) -> str:
        return self.where

    def fetch(self) -> bytes:
        raise InputError(f"{self.where}: {self.message}")
