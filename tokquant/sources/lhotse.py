"""lhotse manifests and Shar folders, read with lhotse (the ``lhotse`` extra).

A ``CutSet`` or ``RecordingSet`` manifest (``.jsonl``, ``.jsonl.gz``): each cut is an
input keyed by its id, its audio loaded by lhotse (``cut.load_audio()``), so offsets,
durations and channel selections are lhotse's own; a multi-channel cut is mixed or split
as ``--channels`` says. A Shar folder (``cuts.NNNNNN.jsonl.gz`` beside
``recording.NNNNNN.tar``): lhotse reads the cut manifests, and each cut's audio member
(already cut to the cut when the Shar was written) is read from its tar at its offset
and decoded by soundfile, as lhotse decodes it; ranks split by shard.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokquant.audio.waveform import WaveformReader
from tokquant.errors import InputError
from tokquant.sources.base import Failed, Source
from tokquant.sources.webdataset import TarMember, index_tar
from tokquant.storage.regular import check_regular

_SHAR_CUTS = re.compile(r"cuts\.(\d+)\.jsonl(\.gz)?$")


def _lhotse() -> Any:
    try:
        # optional extra: lhotse
        import lhotse
    except ImportError:
        raise InputError("lhotse manifests need lhotse: pip install 'tokquant[lhotse]'") from None
    return lhotse


def is_manifest(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and (name.endswith(".jsonl") or name.endswith(".jsonl.gz"))


def is_shar(path: Path) -> bool:
    return path.is_dir() and any(_SHAR_CUTS.match(p.name) for p in path.iterdir())


@dataclass(frozen=True)
class LhotseAudio(Source):
    """A cut or recording of a lhotse manifest, its audio loaded by lhotse."""

    item: Any = field(kw_only=True, compare=False, hash=False)
    manifest: Path = field(kw_only=True)

    @property
    def origin(self) -> str:
        return f"{self.manifest}:{self.item.id}"

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        check_sources(self.item, self.origin)
        try:
            samples = np.asarray(self.item.load_audio(), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - lhotse raises many kinds
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{self.origin}: lhotse cannot load its audio ({detail})") from None
        if samples.ndim == 1:
            samples = samples[None]
        if samples.size == 0:
            raise InputError(f"{self.origin}: audio has no samples")
        yield WaveformReader(
            np.ascontiguousarray(samples.T), int(self.item.sampling_rate), self.origin
        )


#: Audio source types lhotse may load for tokquant: a file, or bytes held in the
#: manifest. ``command`` runs a shell and ``url`` fetches from the network: refused.
SAFE_SOURCE_TYPES = ("file", "memory")


def _recordings(item: Any) -> list[Any]:
    """The recordings behind a cut (a mixed cut's tracks included) or a recording."""
    if hasattr(item, "sources"):
        return [item]
    recording = getattr(item, "recording", None)
    if recording is not None:
        return [recording]
    return [r for track in getattr(item, "tracks", None) or [] for r in _recordings(track.cut)]


def check_sources(item: Any, where: str) -> None:
    """InputError unless every audio source of ``item`` is a regular file or bytes in
    memory: lhotse runs a ``command`` source in a shell and fetches a ``url`` one, and
    a manifest from a stranger must never make tokquant do either."""
    for recording in _recordings(item):
        for source in recording.sources:
            kind = getattr(source, "type", None)
            if kind not in SAFE_SOURCE_TYPES:
                raise InputError(
                    f"{where}: recording {recording.id} has a {kind!r} audio "
                    f"source, which tokquant never runs or fetches (only file "
                    f"and memory sources are read)"
                )
            if kind == "file":
                check_regular(source.source)


def read_manifest(path: Path) -> list[Source]:
    """Every cut (or recording) of a lhotse manifest, in its order."""
    lhotse = _lhotse()
    try:
        items = list(lhotse.load_manifest_lazy(path) or [])
    except Exception as exc:  # noqa: BLE001 - a malformed manifest, of any kind
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path}: not a lhotse CutSet or RecordingSet manifest ({detail})"
        ) from None
    if not items:
        raise InputError(f"{path}: the manifest holds no cuts or recordings")
    return [LhotseAudio(key=Path(item.id), item=item, manifest=path) for item in items]


def _shar_member(name: str) -> tuple[str, str] | None:
    """``(cut id, extension)`` of a Shar member: lhotse names them ``CUT_ID.EXT``, and a
    cut id may hold dots (``spk.u0.flac`` is cut ``spk.u0``)."""
    stem, dot, extension = name.rpartition(".")
    return (stem, extension) if dot and stem and "/" not in name else None


def _shard_indexes(folder: Path, pattern: re.Pattern[str]) -> set[int]:
    return {int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))}


def read_shar(folder: Path, field_name: str = "recording") -> list[Source]:
    """Every cut of a Shar folder, shard by shard, its audio from the shard's tar. The
    cut manifests and the audio tars must pair up shard for shard, as lhotse requires:
    a missing ``cuts.N.jsonl.gz`` is refused, not skipped with its cuts."""
    lhotse = _lhotse()
    cuts = _shard_indexes(folder, _SHAR_CUTS)
    tars = _shard_indexes(folder, re.compile(rf"{re.escape(field_name)}\.(\d+)\.tar$"))
    expected = set(range(max(cuts | tars, default=-1) + 1))
    if cuts != expected or tars != expected:
        no_cuts, no_tars = sorted(expected - cuts), sorted(expected - tars)
        what = (
            f"no cuts.{no_cuts[0]:06d}.jsonl.gz"
            if no_cuts
            else f"no {field_name}.{no_tars[0]:06d}.tar"
        )
        raise InputError(
            f"{folder}: the Shar shards do not pair up ({what}); lhotse reads "
            f"a Shar folder only whole"
        )
    shards = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _SHAR_CUTS.match(p.name))
    )
    out: list[Source] = []
    for index, cuts_path in shards:
        tar = folder / f"{field_name}.{index:06d}.tar"
        tar_index = index_tar(tar, _shar_member)
        try:
            ids = [cut.id for cut in lhotse.load_manifest_lazy(cuts_path)]
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{cuts_path}: not a lhotse cut manifest ({exc})") from None
        for cut_id in ids:
            if cut_id in tar_index.refused:
                out.append(
                    Failed(
                        key=Path(cut_id), where=f"{tar}:{cut_id}", message=tar_index.refused[cut_id]
                    )
                )
                continue
            # each cut's audio member (its other member is the cut's own .json)
            fields = tar_index.fields.get(cut_id, {})
            info = next((i for name, i in fields.items() if name != "json"), None)
            if info is None:
                raise InputError(f"{tar}: no audio for cut {cut_id}")
            out.append(
                TarMember(
                    key=Path(cut_id),
                    tar=tar,
                    member=info.name,
                    offset=info.offset_data,
                    size=info.size,
                    identity=tar_index.identity,
                )
            )
    if not out:
        raise InputError(f"{folder}: the Shar folder holds no cuts")
    return out
