"""Reading a corpus: :class:`Corpus` (random access, iteration) and ``verify``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokquant.errors import FormatError, InputError
from tokquant.formats.corpus.keys import MANIFEST, is_corpus, name_problem
from tokquant.formats.corpus.manifest import Manifest, manifest_problems
from tokquant.formats.corpus.shards import OpenShard, open_shard, shard_problems

#: Shards a :class:`Corpus` keeps open for random access (one descriptor each).
MAX_OPEN_SHARDS = 64


@dataclass(frozen=True)
class Utterance:
    key: str
    source: str
    shard: int
    index: int
    frames: int
    channel: int | None = None


class Corpus:
    """Read a corpus: ``len``, ``keys()``, ``corpus[key]`` (random access by byte
    range: only that utterance's bytes are read), iteration shard by shard.

    Each shard is checked (:func:`open_shard`) when first used; a damaged shard raises
    the same FormatError for every key it holds.

    Example:
        >>> corpus = Corpus("tokens/")
        >>> codes = corpus["speaker1/utt0001"]       # [T, G] int64
        >>> for key, codes in corpus: ...
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not is_corpus(self.root):
            raise InputError(f"{self.root}: not a corpus folder (no {MANIFEST})")
        self.manifest = Manifest.read(self.root / MANIFEST)
        self.checkpoint_id: str = self.manifest.checkpoint_id
        self.cardinalities = self.manifest.cardinalities
        self.frame_rate = self.manifest.frame_rate
        self.shards = [s.file for s in self.manifest.shards]
        self._index: dict[str, Utterance] = {}
        for s, i, e in self.manifest.entries():
            if e.key in self._index:
                raise FormatError(f"{self.root}: key {e.key!r} appears twice in the manifest")
            self._index[e.key] = Utterance(e.key, e.source, s, i, e.frames, e.channel)
        self._open: dict[int, OpenShard | FormatError] = {}

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> list[str]:
        return list(self._index)

    def utterances(self) -> list[Utterance]:
        return list(self._index.values())

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def _shard(self, s: int) -> OpenShard:
        if s in self._open:
            self._open[s] = self._open.pop(s)  # most recently used last
        else:
            record = self.manifest.shards[s]
            try:
                self._open[s] = open_shard(
                    self.root, record, self.manifest, where=str(self.root / record.file)
                )
            except FormatError as exc:
                self._open[s] = exc
            open_now = [k for k, v in self._open.items() if isinstance(v, OpenShard)]
            for old in open_now[: max(0, len(open_now) - MAX_OPEN_SHARDS)]:
                self._close(old)  # checked again if used again
        opened = self._open[s]
        if isinstance(opened, FormatError):
            raise opened
        return opened

    def __getitem__(self, key: str) -> np.ndarray:
        return self.read(key)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Codes ``[T, G]`` of ``key``'s frames ``start:stop``; only they are read (a
        training window of a long utterance costs its own length, not the utterance's)."""
        try:
            u = self._index[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in corpus {self.root}") from None
        problem = name_problem(key)
        if problem is not None:
            raise FormatError(f"{self.root}: {problem}")
        return self._shard(u.shard).read(u.index, self.cardinalities, start, stop)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for s, i, e in self.manifest.entries():
            yield e.key, self._shard(s).read(i, self.cardinalities)
            if i + 1 == len(self.manifest.shards[s].entries):
                self._close(s)

    def _close(self, s: int) -> None:
        opened = self._open.pop(s, None)
        if isinstance(opened, OpenShard):
            opened.close()

    def close(self) -> None:
        """Close every open shard (they reopen, and are checked again, when next used)."""
        for s in list(self._open):
            self._close(s)


def verify_corpus(root: Path) -> list[str]:
    """Every problem found (empty when the corpus is sound): a shard or key the manifest
    lists twice; per shard the first of checksum, header, keys, counts, offsets,
    columns, codes out of range; and keys that cannot become file names."""
    root = Path(root)
    manifest = Manifest.read(root / MANIFEST)
    problems = manifest_problems(manifest)
    for record in manifest.shards:
        problems += shard_problems(root, record, manifest)
    return problems


def describe(root: Path) -> dict[str, object]:
    """What a corpus folder holds, from its manifest alone (``tokquant info``)."""
    root = Path(root)
    manifest = Manifest.read(root / MANIFEST)
    run = manifest.extra.get("run")
    return {
        "kind": "corpus",
        "path": str(root),
        "checkpoint_id": manifest.checkpoint_id,
        "utterances": sum(len(s.entries) for s in manifest.shards),
        "frames": sum(int(s.frames or 0) for s in manifest.shards),
        "shards": len(manifest.shards),
        "failures": len(manifest.failures),
        "frame_rate": manifest.frame_rate,
        "columns": manifest.columns,
        "quantizer": manifest.quantizer,
        "run": run if isinstance(run, dict) else None,
    }
