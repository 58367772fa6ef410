"""Hugging Face datasets: Parquet files (one, or a folder of them, as the Hub stores a
dataset) and ``save_to_disk`` folders (Arrow files beside ``state.json``), read with
pyarrow (the ``parquet`` extra).

The audio column (``--audio-column``, default ``audio``) holds what the ``Audio``
feature stores, a struct of encoded ``bytes`` and a ``path``; or plain bytes; or a path
string. Bytes are decoded by soundfile from memory; a row with no bytes reads its path
(relative paths from the dataset's folder). The key is ``--key-column`` (default ``id``
where the table has one), else the row's file name without its suffix, else
``FILE/ROW``. Reading: the keys are read first, column alone; then each input reads its
row's audio from its row group, which stays cached (a few at a time, whatever the
dataset's size) while the loader threads walk through it, so memory is bounded by a row
group.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokquant.audio.io import SUFFIXES
from tokquant.errors import InputError
from tokquant.sources.base import Failed, Source
from tokquant.sources.blobs import BlobSource
from tokquant.sources.files import walk_files
from tokquant.storage.regular import check_regular, identity, read_regular
from tokquant.storage.safe_json import loads

#: Row groups (or Arrow record batches) held at once by the process, at most.
CACHED_GROUPS = 4


def _pyarrow() -> Any:
    try:
        # optional extra: pyarrow
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError(
            "Parquet and datasets inputs need pyarrow: pip install 'tokquant[parquet]'"
        ) from None
    return pyarrow


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "state.json").is_file()


def is_parquet(path: Path) -> bool:
    """A ``.parquet`` file, or a folder whose first data file (within three levels, the
    Hub's ``data/`` and ``CONFIG/SPLIT/`` layouts) is Parquet, not audio. The look stops
    at the first such file, so a large tree of audio is not walked twice."""
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    return path.is_dir() and first_data_file(path) == ".parquet"


def first_data_file(folder: Path, depth: int = 3) -> str | None:
    """The suffix (``.parquet``, ``.tar`` or an audio one) of the first data file found
    depth-first in sorted order (None: none within ``depth`` levels)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return None
    for entry in entries:
        suffix = Path(entry.name).suffix.lower()
        try:
            if entry.is_file() and (suffix in (".parquet", ".tar") or suffix in SUFFIXES):
                return suffix
            if depth > 1 and entry.is_dir(follow_symlinks=False):
                found = first_data_file(Path(entry.path), depth - 1)
                if found is not None:
                    return found
        except OSError:
            continue
    return None


class _Groups:
    """The audio column of recently read row groups, shared by the loader threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: OrderedDict[tuple[Any, int, str], Any] = OrderedDict()

    def column(self, table: _Table, group: int, column: str) -> Any:
        # keyed by the file's identity, not its path: a file rewritten at the same path
        # (a later job in this process) is never read from an older version's cache
        key = (table.identity, group, column)
        with self.lock:
            if key in self.held:
                self.held.move_to_end(key)
                return self.held[key]
            values = table.read_group(group, column)
            self.held[key] = values
            while len(self.held) > CACHED_GROUPS:
                self.held.popitem(last=False)
            return values


_GROUPS = _Groups()


class _Table:
    """One Parquet or Arrow file, read a row group (or record batch) at a time."""

    def __init__(self, path: Path, arrow: bool, name: str | None = None) -> None:
        pa = _pyarrow()
        self.path = path
        self.arrow = arrow
        #: What fallback keys start with: the file's path from the input, no suffix.
        self.name = name if name is not None else path.stem
        self.identity = identity(check_regular(path))  # a FIFO is refused, not opened
        try:
            if arrow:
                self._batches = pa.ipc.open_stream(pa.memory_map(str(path))).read_all().to_batches()
                self.schema = self._batches[0].schema if self._batches else None
                self.group_rows = [b.num_rows for b in self._batches]
            else:
                self._file = pa.parquet.ParquetFile(str(path))
                self.schema = self._file.schema_arrow
                meta = self._file.metadata
                self.group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{path}: not a readable {'Arrow' if arrow else 'Parquet'} file "
                f"({str(exc).splitlines()[0]})"
            ) from None
        #: The file's row number of each group's first row (messages name rows by it).
        self.first_row = list(itertools.accumulate(self.group_rows, initial=0))[:-1]

    def read_group(self, group: int, column: str) -> Any:
        pa = _pyarrow()
        try:
            now = identity(os.stat(self.path))
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if now != self.identity:
            raise InputError(
                f"{self.path}: the file changed since it was indexed (rewritten during the run?)"
            )
        try:
            if self.arrow:
                return self._batches[group].column(column)
            return self._file.read_row_group(group, columns=[column]).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{self.path}: row group {group} cannot be read ({str(exc).splitlines()[0]})"
            ) from None


@dataclass(frozen=True)
class ParquetRow(BlobSource):
    """Row ``row`` of row group ``group`` of a table."""

    table: Any = field(kw_only=True, compare=False, hash=False)
    group: int = field(kw_only=True)
    row: int = field(kw_only=True)
    column: str = field(kw_only=True)
    #: Its key is its audio's file name (no key column): a duplicate says so.
    keyed_by_file_name: bool = field(kw_only=True, default=False)

    @property
    def origin(self) -> str:
        return f"{self.table.path}#row{self.table.first_row[self.group] + self.row}"

    @property
    def unit(self) -> object:
        return (str(self.table.path), self.group)

    def fetch(self) -> bytes:
        value = _GROUPS.column(self.table, self.group, self.column)[self.row].as_py()
        if isinstance(value, dict):
            blob, path = value.get("bytes"), value.get("path")
        elif isinstance(value, (bytes, bytearray)):
            blob, path = bytes(value), None
        else:
            blob, path = None, value
        if blob is not None and not isinstance(blob, (bytes, bytearray)):
            raise InputError(
                f"{self.origin}: the {self.column} column's bytes field holds "
                f"{type(blob).__name__}, not bytes"
            )
        if blob:
            return bytes(blob)
        if isinstance(path, str) and path:
            file = Path(path) if Path(path).is_absolute() else self.table.path.parent / path
            try:
                return read_regular(file)
            except InputError as exc:
                raise InputError(f"{self.origin}: {exc}") from None
        raise InputError(f"{self.origin}: the {self.column} column holds no audio bytes or path")


def read_tables(
    spec: Path, *, audio_column: str = "audio", key_column: str | None = None
) -> list[Source]:
    """Every row of the Parquet file(s) or saved dataset at ``spec``, in file and row
    order."""
    if is_saved_dataset(spec):
        tables = [_Table(p, arrow=True, name=p.stem) for p in saved_dataset_files(spec)]
    elif spec.is_dir():
        files = sorted(p for p in walk_files(spec) if p.suffix.lower() == ".parquet")
        # fallback keys start with the file's path from the folder, so `en/train/0000`
        # and `fr/train/0000` keep their rows apart
        tables = [
            _Table(p, arrow=False, name=p.relative_to(spec).with_suffix("").as_posix())
            for p in files
        ]
    else:
        tables = [_Table(spec, arrow=False)]
    if not tables:
        raise InputError(f"{spec}: holds no Parquet or Arrow files")
    out: list[Source] = []
    for table in tables:
        out += _rows(table, audio_column, key_column)
    if not out:
        raise InputError(f"{spec}: the dataset holds no rows")
    return out


def saved_dataset_files(folder: Path) -> list[Path]:
    """The Arrow files a ``save_to_disk`` folder's ``state.json`` lists, in its order
    (``datasets`` reads those alone: a cache file that ``filter()`` wrote beside them,
    or a stray copy, is not part of the dataset)."""
    state = loads(read_regular(folder / "state.json"), f"{folder / 'state.json'}")
    files = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(files, list) or not files:
        raise InputError(f"{folder / 'state.json'}: lists no data files (_data_files)")
    out = []
    for entry in files:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if (
            not isinstance(name, str)
            or not name
            or "/" in name
            or "\\" in name
            or name in (".", "..")
        ):
            raise InputError(
                f"{folder / 'state.json'}: data file {name!r} is not a file name in the folder"
            )
        out.append(folder / name)
    return out


def is_dataset_dict(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_dict.json").is_file()


def dataset_dict_splits(path: Path) -> list[str]:
    return sorted(p.name + "/" for p in path.iterdir() if is_saved_dataset(p))


def _rows(table: _Table, audio_column: str, key_column: str | None) -> list[Source]:
    names = table.schema.names if table.schema is not None else []
    if audio_column not in names:
        raise InputError(
            f"{table.path}: no column {audio_column!r} (columns: "
            f"{', '.join(names)}); name the audio column with `audio_column`"
        )
    if key_column is not None and key_column not in names:
        raise InputError(
            f"{table.path}: no key column {key_column!r} (columns: {', '.join(names)})"
        )
    by = key_column or ("id" if "id" in names else None)
    out: list[Source] = []
    for group, count in enumerate(table.group_rows):
        keys = _group_keys(table, group, count, by, audio_column)
        out += [
            k
            if isinstance(k, Failed)
            else ParquetRow(
                key=Path(k),
                table=table,
                group=group,
                row=i,
                column=audio_column,
                keyed_by_file_name=by is None,
            )
            for i, k in enumerate(keys)
        ]
    return out


def _group_keys(
    table: _Table, group: int, count: int, by: str | None, audio: str
) -> list[str | Failed]:
    """The keys of a row group: the key column, else the audio's file names (read alone:
    a Parquet struct's ``path`` field is read without its bytes), else ``FILE/ROW``. A
    key column value that is no text (null, NaN, a struct, bytes that are not UTF-8)
    fails its row alone: a key is never made up from it."""
    start = table.first_row[group]
    if by is not None:
        values = table.read_group(group, by).to_pylist()
        return [
            _key_of(v, by, f"{table.path}#row{start + i}", f"{table.name}/{start + i:06d}")
            for i, v in enumerate(values)
        ]
    pa = _pyarrow()
    kind = table.schema.field(audio).type
    paths: list | None = None
    if pa.types.is_struct(kind) and kind.get_field_index("path") >= 0:
        column = table.read_group(group, audio if table.arrow else f"{audio}.path")
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        paths = column.field("path").to_pylist()
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        paths = table.read_group(group, audio).to_pylist()
    names = [Path(p).stem if isinstance(p, str) and p else None for p in (paths or [None] * count)]
    return [n if n else f"{table.name}/{start + i:06d}" for i, n in enumerate(names)]


def _key_of(value: Any, column: str, where: str, fallback: str) -> str | Failed:
    """A key column's value as a key: text, an integer, or UTF-8 bytes."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text and text.isprintable():
            return text
        problem = f"holds {len(value)} bytes that are not a text key"
    elif value is None or value == "":
        problem = "is null or empty"
    else:
        problem = f"holds a {type(value).__name__}, not a text key"
    return Failed(
        key=Path(fallback),
        where=where,
        message=f"the key column {column!r} {problem}; name a column of unique "
        f"text ids with `key_column`",
    )
