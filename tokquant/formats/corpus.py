"""Corpus: many utterances' codes in shard files, listed by a JSON manifest.

A corpus is a folder::

    manifest.json                       the corpus (written by encode, or by merge)
    manifest.rank00001-of-00004.json    one rank's part while ranks run
    shard-r00001-00000.safetensors      shards of rank 1: 0, 1, 2, ...

Shard (safetensors, read by byte range): ``codes.{g}`` 1-D ``[total_frames]`` per code column
in the smallest unsigned dtype (utterances concatenated), ``offsets`` int64
``[utterances + 1]`` (utterance ``i`` is ``codes[offsets[i]:offsets[i+1]]``), and metadata
``format = tokquant-shard``, ``format_version``, ``checkpoint_id``, ``keys`` (JSON list).

Manifest (JSON): ``format = tokquant-corpus``, ``format_version``, ``tokquant``,
``checkpoint_id``, ``quantizer``, ``columns``, ``frame_rate``, and ``shards``: a list of
``{file, sha256, utterances, frames, entries: [[key, source, frames], ...]}``, and
``failures`` (``[[key, message], ...]``); a rank part also has ``rank``, ``world_size``,
``plan``, ``shard_size`` and ``complete``. An entry's source is the input path, with
``#chC`` appended when channel ``C`` of the audio was encoded (in memory the channel is
:attr:`Entry.channel`; only this module reads or writes that suffix). Keys are relative
paths without extension; they never contain ``..`` or start with ``/``, so decoding a
corpus cannot write outside its output folder.

One check (:func:`open_shard`) serves readers and ``verify``: the file's sha256 against
the manifest (so a changed code is never decoded silently), its header, keys, offsets
and column shapes; codes are range-checked as they are read.

Everything is written atomically and deterministically (no timestamps, sorted JSON), so a
resumed run produces the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tokquant import __version__
from tokquant.errors import FormatError, InputError, OutputError
from tokquant.formats._atomic import atomic_path, remove_stale_temp_files
from tokquant.formats._columns import out_of_range, pack_columns, stack_columns
from tokquant.formats._digest import file_sha256 as sha256_of
from tokquant.formats._json import is_text
from tokquant.formats._json import loads as json_loads
from tokquant.formats._lock import exclusive
from tokquant.formats._safetensors import TensorReader, check_header, write_safetensors
from tokquant.formats.tokens import SUFFIX as TOKENS_SUFFIX

FORMAT = "tokquant-corpus"
SHARD_FORMAT = "tokquant-shard"
FORMAT_VERSION = "1"
MANIFEST = "manifest.json"
#: Shards a :class:`Corpus` keeps open for random access (one descriptor each).
MAX_OPEN_SHARDS = 64
#: A key's path components must leave room for the longest suffix tokquant appends
#: (``.tokens.safetensors``) within the usual 255-byte file-name limit.
MAX_NAME_BYTES = 255 - len(TOKENS_SUFFIX)


def shard_name(rank: int, index: int) -> str:
    return f"shard-r{rank:05d}-{index:05d}.safetensors"


def part_name(rank: int, world_size: int) -> str:
    return f"manifest.rank{rank:05d}-of-{world_size:05d}.json"


def is_corpus(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST).is_file()


def is_corpus_file(path: Path) -> bool:
    """A file tokquant writes into a corpus folder (shard, manifest or rank part)."""
    name = Path(path).name
    return name == MANIFEST or (name.startswith(("shard-r", "manifest.rank")) and (
        name.endswith(".safetensors") or name.endswith(".json")))  # fmt: skip


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


def name_problem(key: str) -> str | None:
    """Why a (safe) key cannot become output file names, or None when it can."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return f"key {key!r} holds a control character (newline, tab, ...)"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):  # undecodable bytes in a file name
        return f"key {key!r} is not valid UTF-8 (the manifest and exports need text keys)"
    for part in key.split("/"):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            return (
                f"key component of {size} bytes is too long for a file name (max {MAX_NAME_BYTES})"
            )
    return None


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a corpus key (unsafe as a path, or no file name), or None."""
    try:
        check_key(key)
    except FormatError as exc:
        return str(exc)
    return name_problem(key)


# Manifest ------------------------------------------------------------------------------


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

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "utterances": self.utterances,
                "frames": self.frames, "entries": [e.to_json() for e in self.entries]}  # fmt: skip


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
        known = ("format", "format_version", "checkpoint_id", "quantizer", "columns",
                 "frame_rate", "shards", "failures")  # fmt: skip
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
                )
                for s in data["shards"]
            ],  # fmt: skip
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


def _is_int(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


# Shards --------------------------------------------------------------------------------


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
        cols = [_in_range(self.where, g, self.handle.read(f"codes.{g}", a, b), card)
                for g, card in enumerate(cardinalities)]  # fmt: skip
        return stack_columns(cols, b - a)

    def read_all(self, cardinalities: list[int]) -> np.ndarray:
        """Codes ``[F, G]`` of every utterance, concatenated (utterance ``i`` is rows
        ``offsets[i]:offsets[i+1]``), range-checked; in the columns' smallest common
        unsigned dtype, as one shard is read whole by an export."""
        cols = [_in_range(self.where, g, self.handle.read(f"codes.{g}"), card)
                for g, card in enumerate(cardinalities)]  # fmt: skip
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
        handle = TensorReader(path)
    except FileNotFoundError:
        raise FormatError(f"{where}: missing") from None
    except OSError as exc:
        raise FormatError(f"{where}: cannot open ({exc.strerror or exc})") from None
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
    handle: TensorReader, meta: dict[str, str], record: ShardRecord, manifest: Manifest,
    where: str,
) -> np.ndarray:  # fmt: skip
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
        if name not in names or handle.shape(name) != (int(offsets[-1]),) or (
            handle.dtype(name).kind != "u"
        ):  # fmt: skip
            raise FormatError(f"{where}: column {g} is not {int(offsets[-1])} unsigned codes")
    return offsets


# Reading -------------------------------------------------------------------------------


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
                self._open[s] = open_shard(self.root, record, self.manifest,
                                           where=str(self.root / record.file))  # fmt: skip
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


# Writing -------------------------------------------------------------------------------


def plan_id(keys: list[str], shard_size: int, checkpoint_id: str, cards: list[int]) -> str:
    """What identifies a resumable run: the same inputs, grouping, checkpoint, columns."""
    blob = json.dumps([checkpoint_id, shard_size, keys, cards]).encode()
    return hashlib.sha256(blob).hexdigest()


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

    def __post_init__(self) -> None:
        done = {s.file for s in self.part.shards}
        self._todo = [j for j in range(self.num_groups) if shard_name(self.rank, j) not in done]

    @classmethod
    def open(cls, root: Path, header: Manifest, keys: list[str], *, shard_size: int,
             rank: int, world: int, overwrite: bool) -> CorpusWriter:  # fmt: skip
        """Start or resume a rank's part under ``root``, holding the rank's lock until
        :meth:`close` (use as a context manager). Refuses a part of another plan, files
        of another run of this rank (another world size), and a rank that another
        process is writing now."""
        if shard_size < 1:
            raise InputError(f"--shard-size must be >= 1, found {shard_size}")
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{root}: cannot create ({exc.strerror or exc})") from None
        lock = contextlib.ExitStack()
        lock.enter_context(exclusive(
            root / f".tokquant-rank{rank:05d}.lock",
            f"{root}: rank {rank} of this corpus is being written by another tokquant run; "
            f"wait for it to finish or choose another --out",
        ))  # fmt: skip
        try:
            part = cls._start_part(root, header, keys, shard_size, rank, world, overwrite)
        except BaseException:
            lock.close()
            raise
        writer = cls(root, part, keys, shard_size, rank, world)
        writer._lock = lock
        return writer

    @staticmethod
    def _start_part(root: Path, header: Manifest, keys: list[str], shard_size: int,
                    rank: int, world: int, overwrite: bool) -> Manifest:  # fmt: skip
        plan = plan_id(keys, shard_size, header.checkpoint_id, header.cardinalities)
        part_path = root / part_name(rank, world)
        remove_stale_temp_files(root)
        mine = [*root.glob(f"manifest.rank{rank:05d}-of-*.json"),
                *root.glob(f"shard-r{rank:05d}-*.safetensors")]  # fmt: skip
        if overwrite:
            for old in mine:
                old.unlink(missing_ok=True)
            if world == 1:
                (root / MANIFEST).unlink(missing_ok=True)
        elif not part_path.exists() and mine:
            raise InputError(
                f"{root}: holds files of another run of rank {rank} ({min(p.name for p in mine)}); "
                f"pass --overwrite to replace them, or choose another --out"
            )
        if part_path.exists():
            part = Manifest.read(part_path)
            if part.extra.get("plan") != plan:
                raise InputError(
                    f"{root}: holds a run over other inputs, shard size or checkpoint; "
                    f"pass --overwrite to start again"
                )
            return part
        header.extra.update(tokquant=__version__, rank=rank, world_size=world, plan=plan,
                            shard_size=shard_size, complete=False)  # fmt: skip
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
        ok = [(e, c) for e, c, err in group if err is None]
        path = self.root / name
        write_shard(path, [(e.key, c) for e, c in ok], checkpoint_id=self.part.checkpoint_id,
                    cardinalities=self.part.cardinalities)  # fmt: skip
        entries = [Entry(e.key, e.source, int(c.shape[0]), e.channel) for e, c in ok]
        self.part.shards.append(ShardRecord(name, sha256_of(path), len(entries),
                                            sum(e.frames for e in entries), entries))  # fmt: skip
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


def merge_parts(root: Path, parts: Iterable[Path] | None = None) -> Manifest:
    """Join rank manifests (all ``manifest.rank*.json`` in ``root`` by default) into
    ``root/manifest.json``; refuses incomplete parts, mixed checkpoints or duplicate keys."""
    root = Path(root)
    paths = sorted(parts if parts else root.glob("manifest.rank*-of-*.json"))
    if not paths:
        raise InputError(f"{root}: no rank manifests (manifest.rank*-of-*.json) to merge")
    merged: Manifest | None = None
    seen: dict[str, str] = {}
    worlds, ranks = set(), set()
    for path in paths:
        part = Manifest.read(path)
        if not part.extra.get("complete"):
            raise InputError(f"{path}: rank {part.extra.get('rank')} has not finished")
        worlds.add(part.extra.get("world_size"))
        ranks.add(part.extra.get("rank"))
        if merged is None:
            extra = {k: v for k, v in part.extra.items() if k not in _PART_ONLY}
            merged = Manifest(part.checkpoint_id, part.quantizer, part.columns, part.frame_rate,
                              extra=extra)  # fmt: skip
        elif part.checkpoint_id != merged.checkpoint_id:
            raise InputError(f"{path}: made by another checkpoint than {paths[0]}")
        for shard in part.shards:
            if (Path(path).parent / shard.file).resolve().parent != root.resolve():
                raise InputError(f"{path}: shard {shard.file} is not in {root}")
            for e in shard.entries:
                if e.key in seen:
                    raise InputError(f"key {e.key!r} is in both {seen[e.key]} and {path}")
                seen[e.key] = str(path)
            merged.shards.append(shard)
        merged.failures += part.failures
    if len(worlds) > 1:
        shown = ", ".join(str(w) for w in sorted(worlds, key=str))
        raise InputError(
            f"{root}: rank manifests of runs with different world sizes ({shown}); merge one "
            f"run's parts (name them) or remove the other run's files"
        )
    if len(worlds) == 1:
        world = worlds.pop()
        if isinstance(world, int) and ranks != set(range(world)):
            missing = sorted(set(range(world)) - ranks)
            raise InputError(f"{root}: rank manifests missing for ranks {missing}")
    assert merged is not None
    merged.write(root / MANIFEST)
    return merged
