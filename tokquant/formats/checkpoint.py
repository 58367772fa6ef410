"""Checkpoint file: a trained tokenizer's config and tensors as safetensors (bytes only:
the model is built from them by :mod:`tokquant.tokenizer.checkpoint`).

Layout: the tokenizer's ``state_dict`` tensors (``mean``, ``std``, ``project_in.*``,
``quantizer.*``, ``project_out.*``) and string metadata:

=================  =======================================================
``format``         ``tokquant-checkpoint``
``format_version`` ``1``
``tokquant``       version that wrote it
``config``         the full :class:`~tokquant.tokenizer.config.TokenizerConfig` as JSON
``summary``        optional JSON of training results (steps, losses, usage)
=================  =======================================================

A checkpoint's id names what makes its codes: the sha256 of its config and tensors
(:func:`content_id`; ``id_scheme`` ``content-v1`` in the metadata), not of the training
summary beside them, whose floats differ in the last digits with the thread count. Files
written before that scheme (no ``id_scheme``) keep their id, the sha256 of the file's
bytes, so their token files still pair with them. Token files record the id. Loading never
unpickles: safetensors holds no code, and a ``.pt`` file (a dict with ``config`` and
``state_dict``) is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tokquant import __version__
from tokquant.errors import FormatError, InputError
from tokquant.formats._safetensors import read_tagged, write_safetensors
from tokquant.storage.atomic import atomic_path
from tokquant.storage.digest import file_sha256
from tokquant.storage.safe_json import loads as json_loads
from tokquant.storage.torch_load import quiet_torch_load

FORMAT = "tokquant-checkpoint"
FORMAT_VERSION = "1"


@dataclass
class CheckpointFile:
    """What a checkpoint file holds, before any model is built from it."""

    path: Path
    config: Any
    tensors: dict[str, torch.Tensor]
    summary: dict[str, Any]
    id: str


def write_checkpoint(
    path: Path, config_json: str, tensors: dict[str, Any], summary: dict[str, Any] | None = None
) -> str:
    """Write a config (JSON text) and float tensors atomically; return the content id."""
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "config": config_json,
        "summary": json.dumps(summary or {}, sort_keys=True),
        "id_scheme": ID_SCHEME,
    }
    with atomic_path(path) as tmp:
        write_safetensors(tmp, tensors, metadata)
    return content_id(config_json, tensors)


#: How new checkpoints' ids are computed (:func:`content_id`).
ID_SCHEME = "content-v1"


def content_id(config_json: str, tensors: dict[str, Any]) -> str:
    """sha256 of the config (as stored) and every tensor's name, dtype, shape and bytes,
    in name order: what makes codes, and nothing else."""
    digest = hashlib.sha256(b"tokquant-checkpoint-content-v1\0")
    digest.update(config_json.encode("utf-8") + b"\0")
    for name in sorted(tensors):
        value = tensors[name]
        array = np.ascontiguousarray(
            value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        )
        digest.update(f"{name}\0{array.dtype.str}\0{list(array.shape)}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_checkpoint(path: Path) -> CheckpointFile:
    """A checkpoint file's config (as parsed JSON), tensors, summary and id; no model."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    config, tensors, summary, ident = _read(path)
    return CheckpointFile(path, config, tensors, summary, ident)


def read_checkpoint_metadata(path: Path) -> dict[str, Any]:
    """Metadata and tensor shapes without building the model (for ``tokquant info``)."""
    config, state, summary, ident = _read(Path(path))
    return {
        "id": ident,
        "config": config,
        "summary": summary,
        "tensors": {k: list(v.shape) for k, v in state.items()},
    }


def _read(path: Path) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any], str]:
    """Config, tensors, summary and the checkpoint's id: its content id where the file
    uses that scheme, else the sha256 of its bytes (``.pt`` files, older checkpoints)."""
    if path.suffix == ".pt":
        config, state, summary = _read_pt(path)
        return config, state, summary, file_sha256(path)
    config, state, summary, ident = _read_safetensors(path)
    return config, state, summary, ident or file_sha256(path)


def _read_safetensors(
    path: Path,
) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any], str | None]:
    """Config, tensors, summary, and the content id where the file uses that scheme."""
    meta, state = read_tagged(path, FORMAT, FORMAT_VERSION, "checkpoint")
    if "config" not in meta:
        raise FormatError(f"{path}: checkpoint metadata has no valid config JSON")
    config = json_loads(meta["config"], f"{path}: checkpoint config")
    summary = json_loads(meta.get("summary") or "{}", f"{path}: checkpoint summary")
    ident = content_id(meta["config"], state) if meta.get("id_scheme") == ID_SCHEME else None
    return config, state, summary if isinstance(summary, dict) else {}, ident


def _read_pt(path: Path) -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
    try:
        obj = quiet_torch_load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal is a format error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{path}: refused to load .pt (weights-only): {first}") from None
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("state_dict"), dict)
        or "config" not in obj
    ):
        raise FormatError(f"{path}: a .pt checkpoint must be a dict with 'config' and 'state_dict'")
    config = obj["config"]
    if isinstance(config, str):
        config = json_loads(config, f"{path}: 'config'")
    state = obj["state_dict"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise FormatError(f"{path}: 'state_dict' must map names to tensors")
    return config, state, {}
