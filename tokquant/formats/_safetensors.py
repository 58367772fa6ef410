"""A deterministic safetensors writer.

The safetensors library writes its header from a hash map, so the same tensors and
metadata can give different bytes from run to run. Checkpoint ids and token files must be
reproducible (same seed, same bytes; a resumed encode equals an uninterrupted one), so
tokquant writes the header itself with sorted keys. The layout is the documented one: an
8-byte little-endian header size, the JSON header padded with spaces to a multiple of 8,
then the raw little-endian tensor bytes in header order. Reading stays with the
safetensors library.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tokquant.errors import FormatError

_DTYPES = {
    np.dtype(np.float64): "F64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8",
    np.dtype(np.uint64): "U64",
    np.dtype(np.uint32): "U32",
    np.dtype(np.uint16): "U16",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
}


def _valid_unicode(text: str) -> str:
    """``text`` with undecodable file-name bytes (``os.fsdecode``'s lone surrogates) spelled
    ``\\xff``: JSON readers such as the safetensors library refuse a header that holds a
    lone surrogate, and a file no reader opens is a file lost."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_spell(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def _spell(surrogate: str) -> str:
    code = ord(surrogate)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def write_safetensors(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    metadata = {key: _valid_unicode(value) for key, value in sorted(metadata.items())}
    header: dict[str, object] = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        if array.dtype not in _DTYPES:
            raise TypeError(f"tensor {name}: dtype {array.dtype} is not supported")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for data in blobs:
            fh.write(data)


def check_header(path: Path, meta: dict[str, str], fmt: str, version: str, what: str) -> None:
    """Refuse a file whose ``format`` / ``format_version`` metadata is not ``fmt`` / ``version``."""
    if meta.get("format") != fmt:
        raise FormatError(f"{path}: not a tokquant {what} (format {meta.get('format')!r})")
    if meta.get("format_version") != version:
        raise FormatError(
            f"{path}: {what} format version {meta.get('format_version')!r} is not "
            f"supported (this tokquant reads {version})"
        )
