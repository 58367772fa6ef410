"""The corpus manifest (``manifest.json``) and a rank's part of it: read, checked, written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokquant.errors import FormatError, InputError
from tokquant.formats.corpus.keys import FORMAT, FORMAT_VERSION, check_key
from tokquant.storage.atomic import atomic_path
from tokquant.storage.safe_json import is_text
from tokquant.storage.safe_json import loads as json_loads


@dataclass(frozen=True)
class Entry:
    """One utterance in a shard."""

    key: str
    source: str
    frames: int
    channel: int | None = None

    def to_json(self) -> list[Any]:
        suffix = "" if self.channel is None else f"#ch{self.channel}"
        return [self.key, self.source + suffix, self.frames]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Entry:
        key, source, frames = raw
        head, sep, tail = source.rpartition("#ch")
        if sep and tail.isdigit():
            return cls(key, head, frames, int(tail))
        return cls(key, source, frames)


@dataclass
class ShardRecord:
    file: str
    sha256: Any
    utterances: Any
    frames: Any
    entries: list[Entry]
    #: Each entry's place in the order the encode read its inputs, where ranks wrote the
    #: corpus (a rank's keys are every N-th unit, so shards alone do not give that
    #: order); None for one rank, whose shards are in that order.
    positions: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        record = {
            "file": self.file,
            "sha256": self.sha256,
            "utterances": self.utterances,
            "frames": self.frames,
            "entries": [e.to_json() for e in self.entries],
        }
        if self.positions is not None:
            record["positions"] = self.positions
        return record


#: Fields of a rank's part that a merged manifest drops.
_PART_ONLY = ("rank", "world_size", "complete")


@dataclass
class Manifest:
    """A corpus manifest (``manifest.json``) or one rank's part of it."""

    checkpoint_id: str
    quantizer: dict[str, Any]
    columns: list[dict[str, Any]]
    frame_rate: float | None
    shards: list[ShardRecord] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    #: Everything else the file holds (version, plan, rank fields), kept as read.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cardinalities(self) -> list[int]:
        return [int(c["cardinality"]) for c in self.columns]

    def entries(self) -> Iterator[tuple[int, int, Entry]]:
        """``(shard, index in shard, entry)`` for every utterance."""
        for s, shard in enumerate(self.shards):
            for i, entry in enumerate(shard.entries):
                yield s, i, entry

    def to_json(self) -> dict[str, Any]:
        return {
            **self.extra,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "checkpoint_id": self.checkpoint_id,
            "quantizer": self.quantizer,
            "columns": self.columns,
            "frame_rate": self.frame_rate,
            "shards": [s.to_json() for s in self.shards],
            "failures": self.failures,
        }

    def write(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = _read_manifest_json(path)
        known = (
            "format",
            "format_version",
            "checkpoint_id",
            "quantizer",
            "columns",
            "frame_rate",
            "shards",
            "failures",
        )
        failures = data.get("failures", [])
        return cls(
            checkpoint_id=data.get("checkpoint_id", ""),
            quantizer=data.get("quantizer", {}),
            columns=data["columns"],
            frame_rate=data.get("frame_rate"),
            shards=[
                ShardRecord(
                    s["file"],
                    s.get("sha256"),
                    s.get("utterances"),
                    s.get("frames"),
                    [Entry.from_json(e) for e in s["entries"]],
                    s.get("positions"),
                )
                for s in data["shards"]
            ],
            failures=failures if isinstance(failures, list) else [],
            extra={k: v for k, v in data.items() if k not in known},
        )


def _read_manifest_json(path: Path) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    data = json_loads(raw, f"{path}: manifest", path_bytes=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FormatError(f"{path}: not a tokquant corpus manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise FormatError(
            f"{path}: corpus format version {data.get('format_version')!r} is not supported"
        )
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(
        isinstance(c, dict) and _is_int(c.get("cardinality"), 1, 2**63) for c in columns
    ):
        raise FormatError(f"{path}: manifest columns must be a list of {{cardinality: int}}")
    if not is_text(data.get("checkpoint_id", "")):
        raise FormatError(f"{path}: manifest checkpoint_id is not a string")
    shards = data.get("shards")
    if not isinstance(shards, list):
        raise FormatError(f"{path}: manifest has no shard list")
    for shard in shards:
        _check_shard_record(path, shard)
    return data


def _check_shard_record(path: Path, shard: Any) -> None:
    if not (
        isinstance(shard, dict)
        and isinstance(shard.get("file"), str)
        and isinstance(shard.get("entries"), list)
    ):
        raise FormatError(f"{path}: manifest has a malformed shard entry")
    name = shard["file"]
    if "/" in name or "\\" in name or name.startswith(".") or not name:
        raise FormatError(f"{path}: shard file name {name!r} is not a plain file name")
    for entry in shard["entries"]:
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and _is_int(entry[2], 0, 2**62)
        ):
            raise FormatError(f"{path}: manifest has a malformed utterance entry")
        check_key(entry[0])
    positions = shard.get("positions")
    if positions is not None and not (
        isinstance(positions, list)
        and len(positions) == len(shard["entries"])
        and all(_is_int(p, 0, 2**62) for p in positions)
    ):
        raise FormatError(f"{path}: manifest shard {name} has malformed positions")


def _is_int(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def manifest_problems(manifest: Manifest) -> list[str]:
    """A shard file or a key listed twice (a reader would give it twice)."""
    problems: list[str] = []
    files: set[str] = set()
    keys: set[str] = set()
    for record in manifest.shards:
        if record.file in files:
            problems.append(f"{record.file}: listed twice in the manifest")
            continue
        files.add(record.file)
        for entry in record.entries:
            if entry.key in keys:
                problems.append(f"{record.file}: key {entry.key!r} appears twice in the manifest")
            keys.add(entry.key)
    return problems
