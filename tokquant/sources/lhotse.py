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

from tokquant.errors import InputError
from tokquant.sources.base import Source
from tokquant.sources.webdataset import TarMember, tar_samples

_SHAR_CUTS = re.compile(r"cuts\.(\d+)\.jsonl(\.gz)?$")


def _lhotse() -> Any:
    try:
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
        import numpy as np

        from tokquant.audio.waveform import WaveformReader

        try:
            samples = np.asarray(self.item.load_audio(), dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - lhotse raises many kinds
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{self.origin}: lhotse cannot load its audio ({detail})") from None
        if samples.ndim == 1:
            samples = samples[None]
        if samples.size == 0:
            raise InputError(f"{self.origin}: audio has no samples")
        yield WaveformReader(np.ascontiguousarray(samples.T), int(self.item.sampling_rate),
                             self.origin)  # fmt: skip


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


def read_shar(folder: Path, field_name: str = "recording") -> list[Source]:
    """Every cut of a Shar folder, shard by shard, its audio from the shard's tar."""
    lhotse = _lhotse()
    shards = sorted((int(m.group(1)), p) for p in folder.iterdir()
                    if (m := _SHAR_CUTS.match(p.name)))  # fmt: skip
    out: list[Source] = []
    for index, cuts_path in shards:
        tar = folder / f"{field_name}.{index:06d}.tar"
        if not tar.is_file():
            raise InputError(f"{folder}: shard {index} has no {tar.name}")
        # each cut's audio member (its other member is the cut's own .json)
        members = {key: next((info for name, info in fields.items() if name != "json"), None)
                   for key, fields in tar_samples(tar).items()}  # fmt: skip
        try:
            ids = [cut.id for cut in lhotse.load_manifest_lazy(cuts_path)]
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{cuts_path}: not a lhotse cut manifest ({exc})") from None
        for cut_id in ids:
            info = members.get(cut_id)
            if info is None:
                raise InputError(f"{tar}: no audio for cut {cut_id}")
            out.append(TarMember(key=Path(cut_id), tar=tar, member=info.name,
                                 offset=info.offset_data, size=info.size))  # fmt: skip
    if not out:
        raise InputError(f"{folder}: the Shar folder holds no cuts")
    return out
