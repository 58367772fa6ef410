"""Token file: the codes of one input, self-describing, readable with numpy + safetensors.

A token file is a safetensors file with one 1-D tensor per code column, named
``codes.0``, ``codes.1``, ... (``G`` columns: RVQ levels, or 32-bit groups of a BSQ/LFQ
code), each ``[num_frames]`` in the smallest unsigned dtype that holds the column's
cardinality (U8, U16, U32, U64). String metadata:

====================  =============================================================
``format``            ``tokquant-tokens``
``format_version``    ``1``
``tokquant``          version that wrote it
``checkpoint_id``     the id of the checkpoint that encoded it (its config and tensors)
``quantizer``         JSON of the quantizer config
``frame_rate``        frames per second, or empty when unknown
``num_frames``        T
``columns``           JSON list of ``{"name", "cardinality", "bits", "dtype"}``
``source``            the input path the tokens came from (as given)
``channel``           the audio channel encoded, or empty for a mix / feature file
``beam``              (only where one was asked for) the RVQ beam width encoded with
====================  =============================================================

Reading without tokquant::

    from safetensors.numpy import load_file
    from safetensors import safe_open
    arrays = load_file("utt.tokens.safetensors")
    codes = np.stack([arrays[f"codes.{g}"] for g in range(len(arrays))], axis=1)
    meta = safe_open("utt.tokens.safetensors", "np").metadata()
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokquant import __version__
from tokquant.errors import FormatError
from tokquant.formats._columns import column_dtype, out_of_range, pack_columns, stack_columns
from tokquant.formats._safetensors import TensorReader, check_header, write_safetensors
from tokquant.storage.atomic import atomic_path
from tokquant.storage.safe_json import loads as json_loads

FORMAT = "tokquant-tokens"
FORMAT_VERSION = "1"
SUFFIX = ".tokens.safetensors"


@dataclass
class TokenFile:
    codes: np.ndarray  # [T, G] int64
    checkpoint_id: str
    columns: list[dict[str, Any]]
    frame_rate: float | None
    source: str
    channel: int | None
    quantizer: dict[str, Any]
    format_version: str
    tokquant_version: str

    @property
    def num_frames(self) -> int:
        return int(self.codes.shape[0])

    @property
    def cardinalities(self) -> list[int]:
        return [int(c["cardinality"]) for c in self.columns]


def write_tokens(
    path: Path,
    codes: np.ndarray,
    *,
    checkpoint_id: str,
    column_names: list[str],
    cardinalities: list[int],
    quantizer: dict[str, Any],
    frame_rate: float | None,
    source: str,
    channel: int | None = None,
    beam: int | None = None,
) -> None:
    """Write ``codes`` ``[T, G]`` atomically (temp file then rename); ``beam`` (an RVQ
    beam width asked for, not the checkpoint's) is recorded as metadata ``beam``."""
    if codes.ndim != 2 or codes.shape[1] != len(cardinalities):
        raise ValueError(f"codes must be [T, {len(cardinalities)}], found {list(codes.shape)}")
    arrays = pack_columns(codes, cardinalities)
    columns = [
        {
            "name": name,
            "cardinality": card,
            "bits": math.ceil(math.log2(card)) if card > 1 else 0,
            "dtype": column_dtype(card).name,
        }
        for name, card in zip(column_names, cardinalities, strict=True)
    ]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "checkpoint_id": checkpoint_id,
        "quantizer": json.dumps(quantizer, sort_keys=True),
        "frame_rate": "" if frame_rate is None else repr(float(frame_rate)),
        "num_frames": str(int(codes.shape[0])),
        "columns": json.dumps(columns),
        "source": source,
        "channel": "" if channel is None else str(channel),
        **({} if beam is None else {"beam": str(int(beam))}),
    }
    with atomic_path(path) as tmp:
        write_safetensors(tmp, arrays, metadata)


def read_tokens(path: Path) -> TokenFile:
    """Read and check a token file; any inconsistency is a :class:`FormatError`."""
    # start-up time: safetensors
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            check_header(path, meta, FORMAT, FORMAT_VERSION, "token file")
            columns = _json(path, meta, "columns", list)
            raw_frames = meta.get("num_frames", "")
            if not raw_frames.isdigit():
                raise FormatError(f"{path}: metadata num_frames is missing or not a number")
            num_frames = int(raw_frames)
            names = sorted(fh.keys())
            want = [f"codes.{g}" for g in range(len(columns))]
            if sorted(want) != names:
                raise FormatError(
                    f"{path}: tensors {names} do not match the {len(columns)} columns"
                )
            cols = []
            for g, col in enumerate(columns):
                card = col.get("cardinality") if isinstance(col, dict) else None
                if not isinstance(card, int) or card < 1:
                    raise FormatError(f"{path}: column {g} has no valid cardinality")
                arr = fh.get_tensor(f"codes.{g}")
                if arr.ndim != 1 or arr.shape[0] != num_frames or arr.dtype.kind != "u":
                    raise FormatError(
                        f"{path}: column {g} is {arr.dtype}{list(arr.shape)}, expected "
                        f"unsigned [{num_frames}]"
                    )
                top = out_of_range(arr, card)
                if top is not None:
                    raise FormatError(
                        f"{path}: column {g} holds code {top}, out of range [0, {card})"
                    )
                cols.append(arr)
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: not a readable token file ({exc})") from None
    codes = stack_columns(cols, num_frames)
    rate = meta.get("frame_rate") or ""
    try:
        frame_rate = float(rate) if rate else None
    except ValueError:
        raise FormatError(f"{path}: metadata frame_rate {rate!r} is not a number") from None
    return TokenFile(
        codes=codes,
        checkpoint_id=meta.get("checkpoint_id", ""),
        columns=columns,
        frame_rate=frame_rate,
        source=meta.get("source", ""),
        channel=int(meta["channel"]) if meta.get("channel", "").isdigit() else None,
        quantizer=_json(path, meta, "quantizer", dict),
        format_version=meta["format_version"],
        tokquant_version=meta.get("tokquant", ""),
    )


def _json(path: Path, meta: dict[str, str], key: str, kind: type) -> Any:
    if key not in meta:
        raise FormatError(f"{path}: metadata {key!r} is missing or not JSON")
    value = json_loads(meta[key], f"{path}: metadata {key!r}")
    if not isinstance(value, kind):
        raise FormatError(f"{path}: metadata {key!r} is not a JSON {kind.__name__}")
    return value


def header_metadata(path: Path) -> dict[str, str]:
    """A token file's metadata from its header alone (no tensor is read)."""
    try:
        with TensorReader(path) as reader:
            return dict(reader.metadata)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
