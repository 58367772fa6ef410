"""Shard files: written atomically, opened through the one check readers and ``verify`` share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokquant.errors import FormatError, InputError
from tokquant.formats._columns import out_of_range, pack_columns, stack_columns
from tokquant.formats._safetensors import TensorReader, check_header, write_safetensors
from tokquant.formats.corpus.keys import FORMAT_VERSION, SHARD_FORMAT, check_key, name_problem
from tokquant.formats.corpus.manifest import Manifest, ShardRecord
from tokquant.storage.atomic import atomic_path


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
    arrays = {"offsets": offsets, **pack_columns(stacked, cardinalities)}
    metadata = {
        "format": SHARD_FORMAT,
        "format_version": FORMAT_VERSION,
        "checkpoint_id": checkpoint_id,
        "keys": json.dumps([check_key(k) for k, _ in entries]),
    }
    with atomic_path(path) as tmp:
        write_safetensors(tmp, arrays, metadata)


@dataclass
class OpenShard:
    """A shard that passed :func:`open_shard`: its open file and its offsets."""

    handle: TensorReader
    offsets: np.ndarray
    where: str

    def read(
        self, i: int, cardinalities: list[int], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """Codes ``[T, G]`` int64 of utterance ``i`` (frames ``start:stop`` of it, as a
        slice would give them; only those are read), range-checked."""
        first, end = int(self.offsets[i]), int(self.offsets[i + 1])
        a, b, _ = slice(start, stop).indices(end - first)
        a, b = first + a, first + max(a, b)
        cols = [
            _in_range(self.where, g, self.handle.read(f"codes.{g}", a, b), card)
            for g, card in enumerate(cardinalities)
        ]
        return stack_columns(cols, b - a)

    def read_all(self, cardinalities: list[int]) -> np.ndarray:
        """Codes ``[F, G]`` of every utterance, concatenated (utterance ``i`` is rows
        ``offsets[i]:offsets[i+1]``), range-checked; in the columns' smallest common
        unsigned dtype, as one shard is read whole by an export."""
        cols = [
            _in_range(self.where, g, self.handle.read(f"codes.{g}"), card)
            for g, card in enumerate(cardinalities)
        ]
        frames = int(self.offsets[-1])
        return np.stack(cols, axis=1) if cols else np.zeros((frames, 0), np.uint8)

    def close(self) -> None:
        self.handle.close()


def _in_range(where: str, g: int, column: np.ndarray, card: int) -> np.ndarray:
    """``column`` (column ``g``), or FormatError if it holds a code ``>= card``."""
    top = out_of_range(column, card)
    if top is not None:
        raise FormatError(f"{where}: column {g} holds code {top} >= {card}")
    return column


def open_shard(
    root: Path, record: ShardRecord, manifest: Manifest, *, where: str, every_code: bool = False
) -> OpenShard:
    """Open and check one shard against its manifest record; ``every_code`` also range-
    checks all codes now (``verify``) rather than as utterances are read. Raises
    FormatError (``where: problem``) for the first problem found. The shard is read
    through one open descriptor (:class:`TensorReader`), so the bytes whose checksum
    matched are the ones decoded, and a shard truncated meanwhile is an error, not a crash."""
    path = root / record.file
    try:
        handle = TensorReader(path)  # a FIFO or a device is refused, never read
    except InputError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise FormatError(
            f"{where}: {'missing' if reason == 'file not found' else reason}"
        ) from None
    try:
        if handle.sha256() != record.sha256:
            raise FormatError(f"{where}: checksum does not match the manifest")
        meta = handle.metadata
        check_header(path, meta, SHARD_FORMAT, FORMAT_VERSION, "shard")
        offsets = _check_layout(handle, meta, record, manifest, where)
        if every_code:
            for g, card in enumerate(manifest.cardinalities):
                _in_range(where, g, handle.read(f"codes.{g}"), card)
    except FormatError as exc:
        handle.close()
        raise FormatError(str(exc).replace(str(path), where, 1)) from None
    except (OSError, ValueError, TypeError) as exc:
        handle.close()
        raise FormatError(f"{where}: not a readable shard ({exc})") from None
    return OpenShard(handle, offsets, where)


def _check_layout(
    handle: TensorReader,
    meta: dict[str, str],
    record: ShardRecord,
    manifest: Manifest,
    where: str,
) -> np.ndarray:
    entries = record.entries
    if meta.get("keys") != json.dumps([e.key for e in entries]):
        raise FormatError(f"{where}: keys differ from the manifest")
    if meta.get("checkpoint_id") != manifest.checkpoint_id:
        raise FormatError(f"{where}: made by another checkpoint")
    frames = np.array([e.frames for e in entries], dtype=np.int64)
    if record.utterances != len(entries) or record.frames != int(frames.sum()):
        raise FormatError(f"{where}: utterance or frame count differs from entries")
    names = set(handle.keys())
    if "offsets" not in names:
        raise FormatError(f"{where}: offsets do not match the manifest")
    offsets = handle.read("offsets")
    if (
        offsets.dtype != np.int64
        or offsets.shape != (len(entries) + 1,)
        or offsets[0] != 0
        or not np.array_equal(np.diff(offsets), frames)
    ):
        raise FormatError(f"{where}: offsets do not match the manifest")
    for g in range(len(manifest.columns)):
        name = f"codes.{g}"
        if (
            name not in names
            or handle.shape(name) != (int(offsets[-1]),)
            or (handle.dtype(name).kind != "u")
        ):
            raise FormatError(f"{where}: column {g} is not {int(offsets[-1])} unsigned codes")
    return offsets


def shard_problems(root: Path, record: ShardRecord, manifest: Manifest) -> list[str]:
    """The one check of a shard (:func:`open_shard`, every code) and its keys' names."""
    problems: list[str] = []
    try:
        open_shard(Path(root), record, manifest, where=record.file, every_code=True).close()
    except FormatError as exc:
        problems.append(str(exc))
    for entry in record.entries:
        problem = name_problem(entry.key)
        if problem is not None:
            problems.append(f"{record.file}: {problem}")
    return problems
