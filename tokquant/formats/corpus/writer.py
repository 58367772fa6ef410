"""Writing one rank's share of a corpus, shard by shard, so a killed run resumes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokquant import __version__
from tokquant.errors import InputError
from tokquant.formats.corpus.keys import MANIFEST, part_name, shard_name
from tokquant.formats.corpus.manifest import Entry, Manifest, ShardRecord
from tokquant.formats.corpus.merge import merge_parts
from tokquant.formats.corpus.shards import write_shard
from tokquant.storage.digest import file_sha256 as sha256_of
from tokquant.storage.folder import OutputFolder


def plan_id(
    keys: list[str], shard_size: int, checkpoint_id: str, cards: list[int], run: object = None
) -> str:
    """What identifies a resumable run: the same inputs, grouping, checkpoint, columns,
    and the run's settings (:func:`run_record`)."""
    blob = json.dumps([checkpoint_id, shard_size, keys, cards] + ([run] if run else [])).encode()
    return hashlib.sha256(blob).hexdigest()


def run_record(
    origins: list[tuple[str, str]], checkpoint_id: str, **settings: object
) -> dict[str, object]:
    """What defines a run across its ranks, recorded in every rank's part so that
    ``merge`` joins only parts of one run: a digest of every input (all ranks' keys and
    origins, in order), the checkpoint, and the settings that change codes or keys
    (levels, beam, channels)."""
    inputs = hashlib.sha256(json.dumps(origins).encode()).hexdigest()
    return {"inputs": inputs, "checkpoint_id": checkpoint_id, **settings}


@dataclass
class CorpusWriter:
    """One rank's share of a corpus, written shard by shard so a killed run resumes.

    The rank's keys are cut into consecutive groups of ``shard_size``; group ``j``
    becomes shard ``j``, written atomically once complete and only then listed in the
    rank's manifest part (atomically). :meth:`add` consumes utterances in key order and
    writes each shard as its group completes; :meth:`pending` says which keys a resumed
    run still has to produce.
    """

    root: Path
    part: Manifest
    keys: list[str]
    shard_size: int
    rank: int
    world: int
    _group: list[tuple[Entry, np.ndarray | None, str | None]] = field(default_factory=list)
    _todo: list[int] = field(default_factory=list)
    written: int = 0
    _lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    #: Each key's place among every rank's inputs (None: one rank, keys in that order).
    positions: list[int] | None = None

    def __post_init__(self) -> None:
        done = {s.file for s in self.part.shards}
        self._todo = [j for j in range(self.num_groups) if shard_name(self.rank, j) not in done]

    @classmethod
    def open(
        cls,
        root: Path,
        header: Manifest,
        keys: list[str],
        *,
        shard_size: int,
        rank: int,
        world: int,
        overwrite: bool,
        positions: list[int] | None = None,
    ) -> CorpusWriter:
        """Start or resume a rank's part under ``root``, holding the rank's lock until
        :meth:`close` (use as a context manager). Refuses a part of another plan, files
        of another run of this rank (another world size), and a rank that another
        process is writing now."""
        if shard_size < 1:
            raise InputError(f"`shard_size` must be >= 1, found {shard_size}")
        root = Path(root)
        lock = contextlib.ExitStack()
        folder = lock.enter_context(
            OutputFolder(root).hold(
                f".tokquant-rank{rank:05d}.lock",
                f"{root}: rank {rank} of this corpus is being written by another tokquant run; "
                f"wait for it to finish or choose another `out`",
            )
        )
        try:
            part = cls._start_part(folder, header, keys, shard_size, rank, world, overwrite)
        except BaseException:
            lock.close()
            raise
        writer = cls(root, part, keys, shard_size, rank, world, positions=positions)
        writer._lock = lock
        return writer

    @staticmethod
    def _start_part(
        folder: OutputFolder,
        header: Manifest,
        keys: list[str],
        shard_size: int,
        rank: int,
        world: int,
        overwrite: bool,
    ) -> Manifest:
        plan = plan_id(
            keys, shard_size, header.checkpoint_id, header.cardinalities, header.extra.get("run")
        )
        root = folder.root
        part_path = root / part_name(rank, world)
        mine = [
            *root.glob(f"manifest.rank{rank:05d}-of-*.json"),
            *root.glob(f"shard-r{rank:05d}-*.safetensors"),
        ]
        if overwrite:  # this rank's files, and nothing else
            folder.remove([p.name for p in mine] + ([MANIFEST] if world == 1 else []))
        elif not part_path.exists() and mine:
            raise InputError(
                f"{root}: holds files of another run of rank {rank} ({min(p.name for p in mine)}); "
                f"pass `overwrite=True` to replace them, or choose another `out`"
            )
        if part_path.exists():
            part = Manifest.read(part_path)
            if part.extra.get("plan") != plan:
                raise InputError(
                    f"{root}: holds a run over other inputs, shard size or checkpoint; "
                    f"pass `overwrite=True` to start again"
                )
            return part
        header.extra.update(
            tokquant=__version__,
            rank=rank,
            world_size=world,
            plan=plan,
            shard_size=shard_size,
            complete=False,
        )
        # Recorded before its first shard: a run killed between writing that shard and
        # listing it must find its own part on resume, not "files of another run".
        header.write(part_path)
        return header

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the rank's lock."""
        self._lock.close()

    @property
    def part_path(self) -> Path:
        return self.root / part_name(self.rank, self.world)

    @property
    def num_groups(self) -> int:
        return -(-len(self.keys) // self.shard_size)

    @property
    def resumed(self) -> int:
        """Shards a previous run had already written."""
        return self.num_groups - len(self._todo) - self.written

    def pending(self) -> list[int]:
        """Positions (in ``keys``) of the utterances whose shard is not written yet."""
        size = self.shard_size
        return [i for j in self._todo for i in range(j * size, min((j + 1) * size, len(self.keys)))]

    def add(self, entry: Entry, codes: np.ndarray | None, error: str | None = None) -> None:
        """The next pending utterance, in key order: its codes, or why it failed."""
        if not self._todo:
            raise ValueError(f"utterance {entry.key!r}: every shard is already written")
        j = self._todo[0]
        start = j * self.shard_size
        want = self.keys[start + len(self._group)]
        if entry.key != want:
            raise ValueError(f"utterance {entry.key!r} out of order (expected {want!r})")
        self._group.append((entry, codes, error))
        if start + len(self._group) == min(start + self.shard_size, len(self.keys)):
            self._write(j)
            self._todo.pop(0)

    def _write(self, j: int) -> None:
        group, self._group = self._group, []
        name = shard_name(self.rank, j)
        first = j * self.shard_size
        ok = [(first + i, e, c) for i, (e, c, err) in enumerate(group) if err is None]
        path = self.root / name
        write_shard(
            path,
            [(e.key, c) for _, e, c in ok],
            checkpoint_id=self.part.checkpoint_id,
            cardinalities=self.part.cardinalities,
        )
        entries = [Entry(e.key, e.source, int(c.shape[0]), e.channel) for _, e, c in ok]
        positions = None if self.positions is None else [self.positions[i] for i, _, _ in ok]
        self.part.shards.append(
            ShardRecord(
                name,
                sha256_of(path),
                len(entries),
                sum(e.frames for e in entries),
                entries,
                positions,
            )
        )
        self.part.failures += [[e.key, err] for e, _, err in group if err is not None]
        self.part.write(self.part_path)
        self.written += 1

    def finish(self) -> Manifest:
        """Mark the part complete; alone (one rank), it becomes ``manifest.json``."""
        self.part.extra["complete"] = True
        self.part.write(self.part_path)
        if self.world == 1:
            merge_parts(self.root, [self.part_path])
        return self.part
