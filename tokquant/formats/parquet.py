"""Parquet export shards that Hugging Face ``datasets`` (and any Arrow reader) loads.

Columns: ``key`` (string), ``codes`` (``list<list<uintN>>`` for the 2-D layouts, which
``datasets`` reads as ``Array2D((None, G), uintN)``; ``list<uintN>`` interleaved),
``num_frames`` (int64, frames before dedup), ``durations`` (``list<uint32>``, with dedup
only) and the metadata columns. The schema metadata holds ``tokquant`` (JSON: version,
checkpoint id, frame rate, cardinalities, layout, offsets, vocabulary size, pad id) and
``huggingface`` (the ``datasets`` features, so the 2-D column keeps its shape).
Arrays are built from the shard's concatenated ids without a Python loop per row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tokquant.errors import OutputError
from tokquant.formats._export_rows import ExportRows
from tokquant.storage.atomic import atomic_path

_ARRAY2D = "datasets.features.features.Array2DExtensionType"


def write_parquet(path: Path, rows: ExportRows) -> None:
    """Write one shard's rows to ``path``, atomically."""
    # optional extra: pyarrow
    import pyarrow as pa
    import pyarrow.parquet as pq

    tokens = rows.tokens
    G = rows.layout.num_columns
    dtype = rows.layout.dtype.name
    values = pa.array(np.ascontiguousarray(tokens.rows).reshape(-1))
    offsets = tokens.row_offsets
    if tokens.flat:
        codes = pa.ListArray.from_arrays(_offsets(offsets * G), values)
        codes_field = pa.field("codes", codes.type)
        codes_feature: dict[str, Any] = _sequence(dtype)
    else:
        frames = pa.ListArray.from_arrays(_offsets(np.arange(0, len(values) + 1, G)), values)
        codes = pa.ListArray.from_arrays(_offsets(offsets), frames)
        extension = {
            "ARROW:extension:name": _ARRAY2D,
            "ARROW:extension:metadata": json.dumps([[None, G], dtype]),
        }
        codes_field = pa.field("codes", codes.type, metadata=extension)
        codes_feature = {"shape": [None, G], "dtype": dtype, "_type": "Array2D"}
    fields = [pa.field("key", pa.string()), codes_field, pa.field("num_frames", pa.int64())]
    arrays = [pa.array(rows.keys, pa.string()), codes, pa.array(rows.num_frames, pa.int64())]
    features = {"key": _value("string"), "codes": codes_feature, "num_frames": _value("int64")}
    if tokens.durations is not None and tokens.duration_offsets is not None:
        durations = pa.array(tokens.durations.astype(np.uint32))
        arrays.append(pa.ListArray.from_arrays(_offsets(tokens.duration_offsets), durations))
        fields.append(pa.field("durations", arrays[-1].type))
        features["durations"] = _sequence("uint32")
    for name, kind in rows.metadata_columns.items():
        arrays.append(pa.array([m.get(name) for m in rows.metadata], _arrow_type(kind)))
        fields.append(pa.field(name, arrays[-1].type))
        features[name] = _value(kind)
    schema = pa.schema(
        fields,
        metadata={
            "tokquant": json.dumps(rows.info, sort_keys=True),
            "huggingface": json.dumps({"info": {"features": features}}),
        },
    )
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _offsets(offsets: np.ndarray) -> Any:
    # optional extra: pyarrow
    import pyarrow as pa

    if offsets.size and offsets[-1] >= 2**31:
        raise OutputError(
            "a Parquet export shard holds at most 2**31 - 1 ids: encode with a smaller `shard_size`"
        )
    return pa.array(offsets.astype(np.int32))


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


def _sequence(dtype: str) -> dict[str, Any]:
    # "Sequence" is what datasets < 4 calls a list; datasets >= 4 reads it as List
    return {"feature": _value(dtype), "_type": "Sequence"}


def _arrow_type(kind: str) -> Any:
    # optional extra: pyarrow
    import pyarrow as pa

    return {"bool": pa.bool_, "int64": pa.int64, "float64": pa.float64, "string": pa.string}[kind]()
