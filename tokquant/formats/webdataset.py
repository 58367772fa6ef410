"""WebDataset tar shards: per utterance ``KEY.codes.npy``, ``KEY.json`` and, with dedup,
``KEY.durations.npy``.

WebDataset groups a tar's members into samples by the name up to the first dot of the
last path component, so a corpus key is made tar-safe by percent-escaping: ``%`` becomes
``%25`` and ``.`` becomes ``%2E`` (``spk1/utt.01`` -> ``spk1/utt%2E01``;
:func:`tar_key` and :func:`corpus_key` convert). Folders in a key stay folders. The
original key is also the ``key`` field of ``KEY.json``, beside ``num_frames`` and the
metadata columns. Members are written in corpus order with fixed owner, mode and time,
so the same rows give the same bytes.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np

from tokquant.formats._export_rows import ExportRows
from tokquant.storage.atomic import atomic_path


def tar_key(key: str) -> str:
    """A corpus key as a WebDataset sample key (no dots)."""
    return key.replace("%", "%25").replace(".", "%2E")


def corpus_key(sample_key: str) -> str:
    """The inverse of :func:`tar_key`."""
    return sample_key.replace("%2E", ".").replace("%25", "%")


def write_tar(path: Path, rows: ExportRows) -> None:
    """Write one shard's rows as a tar file at ``path``, atomically."""
    with atomic_path(path) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, key in enumerate(rows.keys):
            name = tar_key(key)
            _add(tar, f"{name}.codes.npy", _npy(rows.tokens.tokens(i)))
            durations = rows.tokens.durations_of(i)
            if durations is not None:
                _add(tar, f"{name}.durations.npy", _npy(durations.astype(np.uint32)))
            sample = {"key": key, "num_frames": int(rows.num_frames[i]), **rows.metadata[i]}
            text = json.dumps(sample, ensure_ascii=False, sort_keys=True)
            _add(tar, f"{name}.json", text.encode())


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))
