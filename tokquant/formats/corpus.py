"""Corpus: many utterances' codes in shard files, listed by a JSON manifest.

A corpus is a folder::

    manifest.json                       the corpus (written by encode, or by merge)
    manifest.rank00001-of-00004.json    one rank's part while ranks run
    shard-r00001-00000.safetensors      shards of rank 1: 0, 1, 2, ...

Shard (safetensors, memory-mappable): ``codes.{g}`` 1-D ``[total_frames]`` per code column
in the smallest unsigned dtype (utterances concatenated), ``offsets`` int64
``[utterances + 1]`` (utterance ``i`` is ``codes[offsets[i]:offsets[i+1]]``), and metadata
``format = tokquant-shard``, ``format_version``, ``checkpoint_id``, ``keys`` (JSON list).

Manifest (JSON): ``format = tokquant-corpus``, ``format_version``, ``tokquant``,
``checkpoint_id``, ``quantizer``, ``columns``, ``frame_rate``, and ``shards``: a list of
``{file, sha256, utterances, frames, entries: [[key, source, frames], ...]}``; a rank
part also has ``rank``, ``world_size``, ``complete`` and ``failures``. Keys are relative
paths without extension; they never contain ``..`` or start with ``/``, so decoding a
corpus cannot write outside its output folder.

Everything is written atomically and deterministically (no timestamps, sorted JSON), so a
resumed run produces the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokquant import __version__
from tokquant.errors import FormatError, InputError
from tokquant.formats._atomic import atomic_path
from tokquant.formats._digest import file_sha256 as sha256_of
from tokquant.formats._safetensors import check_header, write_safetensors
from tokquant.formats.tokens import column_dtype

FORMAT = "tokquant-corpus"
SHARD_FORMAT = "tokquant-shard"
FORMAT_VERSION = "1"
MANIFEST = "manifest.json"


def shard_name(rank: int, index: int) -> str:
    return f"shard-r{rank:05d}-{index:05d}.safetensors"


def part_name(rank: int, world_size: int) -> str:
    return f"manifest.rank{rank:05d}-of-{world_size:05d}.json"


def is_corpus(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def check_key(key: str) -> str:
    """Refuse keys that could escape an output folder."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise FormatError(f"corpus key {key!r} is not a safe relative path")
    return key


def write_shard(
    path: Path,
    entries: list[tuple[str, np.ndarray]],
    *,
    checkpoint_id: str,
    cardinalities: list[int],
) -> None:
    """Write ``[(key, codes [T, G])...]`` as one shard, atomically."""
    lengths = [codes.shape[0] for _, codes in entries]
    offsets = np.zeros(len(entries) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    stacked = (
        np.concatenate([codes for _, codes in entries])
        if entries
        else np.zeros((0, len(cardinalities)), np.int64)
    )
    arrays = {"offsets": offsets}
    for g, card in enumerate(cardinalities):
        arrays[f"codes.{g}"] = np.ascontiguousarray(stacked[:, g].astype(column_dtype(card)))
    metadata = {
        "format": SHARD_FORMAT,
        "format_version": FORMAT_VERSION,
        "checkpoint_id": checkpoint_id,
        "keys": json.dumps([check_key(k) for k, _ in entries]),
    }
    with atomic_path(path) as tmp:
        write_safetensors(tmp, arrays, metadata)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def new_manifest(
    *, checkpoint_id: str, quantizer: dict[str, Any], columns: list[dict[str, Any]],
    frame_rate: float | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "checkpoint_id": checkpoint_id,
        "quantizer": quantizer,
        "columns": columns,
        "frame_rate": frame_rate,
        "shards": [],
    }


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read manifest ({exc})") from None
    except json.JSONDecodeError:
        raise FormatError(f"{path}: manifest is not valid JSON") from None
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
    if not isinstance(data.get("checkpoint_id", ""), str):
        raise FormatError(f"{path}: manifest checkpoint_id is not a string")
    shards = data.get("shards")
    if not isinstance(shards, list):
        raise FormatError(f"{path}: manifest has no shard list")
    for shard in shards:
        if not (isinstance(shard, dict) and isinstance(shard.get("file"), str)
                and isinstance(shard.get("entries"), list)):  # fmt: skip
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
    return data


def _is_int(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


@dataclass(frozen=True)
class Utterance:
    key: str
    source: str
    shard: int
    index: int
    frames: int


class Corpus:
    """Read a corpus: ``len``, ``keys()``, ``corpus[key]`` (random access through a
    memory map, only that utterance's bytes are read), iteration shard by shard.

    Example:
        >>> corpus = Corpus("tokens/")
        >>> codes = corpus["speaker1/utt0001"]       # [T, G] int64
        >>> for key, codes in corpus: ...
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not is_corpus(self.root):
            raise InputError(f"{self.root}: not a corpus folder (no {MANIFEST})")
        self.manifest = read_manifest(self.root / MANIFEST)
        self.checkpoint_id: str = self.manifest.get("checkpoint_id", "")
        self.cardinalities = [int(c["cardinality"]) for c in self.manifest.get("columns", [])]
        self.frame_rate = self.manifest.get("frame_rate")
        self.shards = [s["file"] for s in self.manifest["shards"]]
        self._index: dict[str, Utterance] = {}
        for s, shard in enumerate(self.manifest["shards"]):
            for i, (key, source, frames) in enumerate(shard["entries"]):
                if key in self._index:
                    raise FormatError(f"{self.root}: key {key!r} appears twice in the manifest")
                self._index[key] = Utterance(key, str(source), s, i, int(frames))
        self._open: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> list[str]:
        return list(self._index)

    def utterances(self) -> list[Utterance]:
        return list(self._index.values())

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def _shard(self, s: int) -> tuple[Any, np.ndarray]:
        """Open shard ``s`` (memory-mapped) and check it against the manifest: keys,
        offsets and column lengths; codes are range-checked as they are read."""
        if s not in self._open:
            from safetensors import SafetensorError, safe_open

            path = self.root / self.shards[s]
            entries = self.manifest["shards"][s]["entries"]
            try:
                handle = safe_open(str(path), framework="np")
                meta = handle.metadata() or {}
                check_header(path, meta, SHARD_FORMAT, FORMAT_VERSION, "shard")
                if meta.get("keys") != json.dumps([e[0] for e in entries]):
                    raise FormatError(f"{path}: keys differ from the manifest")
                offsets = handle.get_tensor("offsets")
                frames = np.array([e[2] for e in entries], dtype=np.int64)
                if (
                    offsets.dtype != np.int64
                    or offsets.shape != (len(entries) + 1,)
                    or offsets[0] != 0
                    or not np.array_equal(np.diff(offsets), frames)
                ):
                    raise FormatError(f"{path}: offsets do not match the manifest")
                for g in range(len(self.cardinalities)):
                    col = handle.get_slice(f"codes.{g}")
                    if col.get_shape() != [int(offsets[-1])] or col.get_dtype()[0] != "U":
                        raise FormatError(
                            f"{path}: column {g} is not {int(offsets[-1])} unsigned codes"
                        )
            except (SafetensorError, OSError, ValueError, TypeError) as exc:
                if isinstance(exc, FormatError):
                    raise
                raise FormatError(f"{path}: not a readable shard ({exc})") from None
            self._open[s] = (handle, offsets)
        return self._open[s]

    def _read(self, s: int, i: int) -> np.ndarray:
        handle, offsets = self._shard(s)
        a, b = int(offsets[i]), int(offsets[i + 1])
        cols = []
        for g, card in enumerate(self.cardinalities):
            raw = handle.get_slice(f"codes.{g}")[a:b]
            col = raw.astype(np.int64)
            if raw.size and int(raw.max()) >= card:
                raise FormatError(
                    f"{self.root / self.shards[s]}: column {g} holds code {int(col.max())} >= {card}"
                )
            cols.append(col)
        return np.stack(cols, axis=1) if cols else np.zeros((b - a, 0), np.int64)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            u = self._index[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in corpus {self.root}") from None
        return self._read(u.shard, u.index)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for s, shard in enumerate(self.manifest["shards"]):
            for i, (key, _, _) in enumerate(shard["entries"]):
                yield key, self._read(s, i)
            self._open.pop(s, None)


def verify_corpus(root: Path) -> list[str]:
    """Every problem found (empty when the corpus is sound): checksums, counts, keys,
    offsets, and every code in range of its column."""
    from safetensors import SafetensorError, safe_open

    root = Path(root)
    manifest = read_manifest(root / MANIFEST)
    cards = [int(c["cardinality"]) for c in manifest.get("columns", [])]
    problems: list[str] = []
    for shard in manifest["shards"]:
        path = root / shard["file"]
        if not path.is_file():
            problems.append(f"{shard['file']}: missing")
            continue
        if sha256_of(path) != shard.get("sha256"):
            problems.append(f"{shard['file']}: checksum does not match the manifest")
            continue
        try:
            with safe_open(str(path), framework="np") as fh:
                meta = fh.metadata() or {}
                keys = json.loads(meta.get("keys", "[]"))
                offsets = fh.get_tensor("offsets")
                want_keys = [e[0] for e in shard["entries"]]
                if keys != want_keys:
                    problems.append(f"{shard['file']}: keys differ from the manifest")
                if meta.get("checkpoint_id") != manifest.get("checkpoint_id"):
                    problems.append(f"{shard['file']}: made by another checkpoint")
                frames = [int(e[2]) for e in shard["entries"]]
                if (
                    offsets.shape != (len(frames) + 1,)
                    or list(np.diff(offsets)) != frames
                    or offsets[0] != 0
                ):
                    problems.append(f"{shard['file']}: offsets do not match the frame counts")
                if shard.get("utterances") != len(frames) or shard.get("frames") != sum(frames):
                    problems.append(
                        f"{shard['file']}: utterance or frame count differs from entries"
                    )
                for g, card in enumerate(cards):
                    col = fh.get_tensor(f"codes.{g}")
                    if col.shape != (int(offsets[-1]),):
                        problems.append(
                            f"{shard['file']}: column {g} has {col.shape[0]} codes, expected {int(offsets[-1])}"
                        )
                    elif col.size and int(col.max()) >= card:
                        problems.append(
                            f"{shard['file']}: column {g} has code {int(col.max())} >= {card}"
                        )
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{shard['file']}: unreadable ({exc})")
    return problems


def merge_parts(root: Path, parts: list[Path] | None = None) -> dict[str, Any]:
    """Join rank manifests (all ``manifest.rank*.json`` in ``root`` by default) into
    ``root/manifest.json``; refuses incomplete parts, mixed checkpoints or duplicate keys."""
    root = Path(root)
    parts = sorted(parts if parts else root.glob("manifest.rank*-of-*.json"))
    if not parts:
        raise InputError(f"{root}: no rank manifests (manifest.rank*-of-*.json) to merge")
    merged: dict[str, Any] | None = None
    seen: dict[str, str] = {}
    worlds = set()
    ranks = set()
    for path in parts:
        part = read_manifest(path)
        if not part.get("complete"):
            raise InputError(f"{path}: rank {part.get('rank')} has not finished")
        worlds.add(part.get("world_size"))
        ranks.add(part.get("rank"))
        if merged is None:
            merged = {
                k: v
                for k, v in part.items()
                if k not in ("rank", "world_size", "complete", "failures")
            }
            merged["shards"] = []
            merged["failures"] = []
        elif part.get("checkpoint_id") != merged["checkpoint_id"]:
            raise InputError(f"{path}: made by another checkpoint than {parts[0]}")
        for shard in part["shards"]:
            if (Path(path).parent / shard["file"]).resolve().parent != root.resolve():
                raise InputError(f"{path}: shard {shard['file']} is not in {root}")
            for key, _, _ in shard["entries"]:
                if key in seen:
                    raise InputError(f"key {key!r} is in both {seen[key]} and {path}")
                seen[key] = str(path)
            merged["shards"].append(shard)
        merged["failures"] += part.get("failures", [])
    if len(worlds) == 1:
        world = worlds.pop()
        if isinstance(world, int) and ranks != set(range(world)):
            missing = sorted(set(range(world)) - ranks)
            raise InputError(f"{root}: rank manifests missing for ranks {missing}")
    assert merged is not None
    write_manifest(root / MANIFEST, merged)
    return merged
