"""A deterministic safetensors writer.

The safetensors library writes its header from a hash map, so the same tensors and
metadata can give different bytes from run to run. Checkpoint ids and token files must be
reproducible (same seed, same bytes; a resumed encode equals an uninterrupted one), so
tokquant writes the header itself with sorted keys. The layout is the documented one: an
8-byte little-endian header size, the JSON header padded with spaces to a multiple of 8,
then the raw little-endian tensor bytes in header order. Corpus shards are read by
:class:`TensorReader` (see there why not through a memory map); everything else is read
by the safetensors library.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from tokquant.errors import FormatError
from tokquant.storage.regular import open_regular_fd
from tokquant.storage.safe_json import loads as json_loads

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


def read_tagged(
    path: Path, fmt: str, version: str, what: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """``(metadata, tensors)`` of a tokquant safetensors file whose header says ``fmt``
    / ``version`` (checkpoints, vocoders): any problem is one :class:`FormatError` line."""
    # start-up time: safetensors
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            check_header(path, meta, fmt, version, what)
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        first = str(exc).splitlines()[0] if str(exc) else repr(exc)
        raise FormatError(
            f"{path}: not a tokquant {what} (unreadable safetensors: {first})"
        ) from None
    return meta, state


_NP_DTYPES = {name: dtype for dtype, name in _DTYPES.items()}
#: The safetensors library's own bound on a header.
MAX_HEADER_BYTES = 100 << 20


class TensorReader:
    """The tensors of a safetensors file, read with ``pread`` on one open descriptor.

    The safetensors library memory-maps the file, and a file truncated while it is mapped
    (another run rewriting a shard, a full disk, a user's ``truncate``) kills the reading
    process with SIGBUS when a vanished page is touched: no exception, no message, and a
    DataLoader's whole job gone. A ``pread`` of missing bytes returns short instead, which
    is reported as a :class:`FormatError`. The header is checked as the library checks it
    (known dtypes, offsets that tile the data, shapes that match their byte counts); the
    descriptor pins the file that was checked, so a rename over it is never read.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = open_regular_fd(self.path)  # a FIFO or /dev/zero would never end
        self._tensors: dict[str, tuple[np.dtype, tuple[int, ...], int]] | None = None
        self._metadata: dict[str, str] = {}

    def sha256(self) -> str:
        """The digest of the open file's bytes (the file whose tensors are read)."""
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(self._fd, 1 << 20, offset):
            digest.update(chunk)
            offset += len(chunk)
        return digest.hexdigest()

    @property
    def metadata(self) -> dict[str, str]:
        self._header()
        return self._metadata

    def _header(self) -> dict[str, tuple[np.dtype, tuple[int, ...], int]]:
        if self._tensors is None:
            self._tensors = self._read_header()
        return self._tensors

    def _read_header(self) -> dict[str, tuple[np.dtype, tuple[int, ...], int]]:
        size = os.fstat(self._fd).st_size
        n = int.from_bytes(self._pread(8, 0), "little")
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise FormatError(f"{self.path}: not a safetensors file (header size {n})")
        header = json_loads(self._pread(n, 8), f"{self.path}: safetensors header")
        if not isinstance(header, dict):
            raise FormatError(f"{self.path}: safetensors header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise FormatError(f"{self.path}: safetensors metadata must map names to text")
        self._metadata = meta
        start = 8 + n
        tensors = {}
        spans = []
        for name, spec in header.items():
            dtype, shape, begin, end = _tensor_spec(self.path, name, spec)
            tensors[name] = (dtype, shape, start + begin)
            spans.append((begin, end))
        spans.sort()
        covered = 0
        for begin, end in spans:
            if begin != covered:
                raise FormatError(f"{self.path}: tensor data offsets do not tile the file")
            covered = end
        if start + covered != size:
            raise FormatError(f"{self.path}: holds {size - start} data bytes, its header {covered}")
        return tensors

    def _pread(self, count: int, offset: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = os.pread(self._fd, count - len(data), offset + len(data))
            if not chunk:
                raise FormatError(
                    f"{self.path}: file ended at byte {offset + len(data)} (truncated while "
                    f"open?), expected {count - len(data)} more"
                )
            data += chunk
        return bytes(data)

    def keys(self) -> list[str]:
        return list(self._header())

    def shape(self, name: str) -> tuple[int, ...]:
        return self._header()[name][1]

    def dtype(self, name: str) -> np.dtype:
        return self._header()[name][0]

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Tensor ``name``, or rows ``start:stop`` of it (only those bytes are read)."""
        dtype, shape, offset = self._header()[name]
        rows = shape[0] if shape else 1
        row = dtype.itemsize * math.prod(shape[1:])
        stop = rows if stop is None else stop
        if not 0 <= start <= stop <= rows:
            raise FormatError(f"{self.path}: rows {start}:{stop} of {name} do not exist")
        data = self._pread((stop - start) * row, offset + start * row)
        array = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
        return array.reshape((stop - start, *shape[1:]) if shape else ())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TensorReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()


def _tensor_spec(path: Path, name: str, spec: Any) -> tuple[np.dtype, tuple[int, ...], int, int]:
    ok = (
        isinstance(spec, dict)
        and spec.get("dtype") in _NP_DTYPES
        and isinstance(spec.get("shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec["shape"])
        and isinstance(spec.get("data_offsets"), list)
        and len(spec["data_offsets"]) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in spec["data_offsets"])
    )
    if not ok:
        raise FormatError(f"{path}: tensor {name!r} has a malformed header entry")
    dtype = _NP_DTYPES[spec["dtype"]]
    shape = tuple(spec["shape"])
    begin, end = spec["data_offsets"]
    if not 0 <= begin <= end or end - begin != dtype.itemsize * math.prod(shape):
        raise FormatError(f"{path}: tensor {name!r} offsets do not match its shape and dtype")
    return dtype, shape, begin, end
