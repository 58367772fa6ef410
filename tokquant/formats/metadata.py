"""Per-utterance metadata files (text, speaker, ...) that an export joins to the codes.

Two spellings, keyed by corpus key:

- ``.jsonl``: one JSON object per line with a string ``key``; its other fields are
  columns. A column whose values (nulls aside) are all booleans is ``bool``, all integers
  ``int64``, all numbers ``float64``, all strings ``string``; any other mix is kept as
  each value's JSON text (``string``), so every export shard has the same schema.
- ``.tsv``: a header line naming the columns, one of them ``key``; every value is a
  string (no quoting: a tab or newline cannot occur inside a value).

A missing field is null. Keys must be unique; names the export already uses (``key``,
``codes``, ``num_frames``, ``durations``) cannot be columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokquant.errors import FormatError, InputError
from tokquant.storage.safe_json import loads as json_loads

RESERVED = ("key", "codes", "num_frames", "durations")


@dataclass
class Metadata:
    """Rows by key, and each column's type: ``bool``, ``int64``, ``float64``, ``string``."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    def row(self, key: str) -> dict[str, Any]:
        """The key's values, every column present (None where missing)."""
        values = self.rows.get(key, {})
        return {name: values.get(name) for name in self.columns}


def read_metadata(path: Path) -> Metadata:
    """Read a ``.jsonl`` or ``.tsv`` metadata file; InputError names the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is no column name
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read metadata ({exc})") from None
    if path.suffix == ".jsonl":
        raw = _read_jsonl(path, text)
    elif path.suffix == ".tsv":
        raw = _read_tsv(path, text)
    else:
        raise InputError(f"{path}: metadata must be a .jsonl or .tsv file")
    names: dict[str, None] = {}
    for values in raw.values():
        names.update(dict.fromkeys(values))
    for name in names:
        if name in RESERVED:
            raise InputError(f"{path}: column {name!r} is reserved for the export's own data")
    columns = {
        name: _column_type([v[name] for v in raw.values() if v.get(name) is not None])
        for name in sorted(names)
    }
    for name, kind in columns.items():
        if kind == "json":
            for values in raw.values():
                if values.get(name) is not None:
                    values[name] = json.dumps(values[name], ensure_ascii=False, sort_keys=True)
            columns[name] = "string"
        elif kind == "float64":
            for values in raw.values():
                if values.get(name) is not None:
                    values[name] = float(values[name])
    return Metadata(raw, columns)


def _read_jsonl(path: Path, text: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    # JSON Lines ends a line at "\n" alone: U+2028 or NEL inside a string is text.
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json_loads(line, f"{path}:{n}")
        except FormatError as exc:
            raise InputError(str(exc)) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
            raise InputError(f'{path}:{n}: needs a JSON object with a string "key"')
        key = obj.pop("key")
        if key in rows:
            raise InputError(f"{path}:{n}: key {key!r} appears twice")
        rows[key] = obj
    return rows


def _read_tsv(path: Path, text: str) -> dict[str, dict[str, Any]]:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    header = lines[0].split("\t") if lines else []
    if "key" not in header:
        raise InputError(f"{path}: the header line must name a 'key' column")
    if len(set(header)) != len(header):
        raise InputError(f"{path}: the header line names a column twice")
    rows: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(lines[1:], 2):
        if not line:
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise InputError(f"{path}:{n}: {len(cells)} fields, the header has {len(header)}")
        values: dict[str, Any] = dict(zip(header, cells, strict=True))
        key = values.pop("key")
        if key in rows:
            raise InputError(f"{path}:{n}: key {key!r} appears twice")
        rows[key] = values
    return rows


def _column_type(values: list[Any]) -> str:
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(
        isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 for v in values
    ):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float64"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"
