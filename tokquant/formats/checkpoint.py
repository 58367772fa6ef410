"""Checkpoint file: a trained :class:`~tokquant.tokenizer.Tokenizer` as safetensors.

Layout: the tokenizer's ``state_dict`` tensors (``mean``, ``std``, ``project_in.*``,
``quantizer.*``, ``project_out.*``) and string metadata:

=================  =======================================================
``format``         ``tokquant-checkpoint``
``format_version`` ``1``
``tokquant``       version that wrote it
``config``         the full :class:`~tokquant.config.TokenizerConfig` as JSON
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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokquant import __version__
from tokquant.config import TokenizerConfig
from tokquant.errors import ConfigError, FormatError, InputError
from tokquant.formats._safetensors import read_tagged, write_safetensors
from tokquant.storage.atomic import atomic_path
from tokquant.storage.digest import file_sha256
from tokquant.storage.safe_json import loads as json_loads
from tokquant.storage.torch_load import quiet_torch_load
from tokquant.tokenizer import Tokenizer

FORMAT = "tokquant-checkpoint"
FORMAT_VERSION = "1"


@dataclass
class Checkpoint:
    tokenizer: Tokenizer
    id: str
    path: Path
    summary: dict[str, Any]


def save_checkpoint(tokenizer: Tokenizer, path: Path, summary: dict[str, Any] | None = None) -> str:
    """Write atomically; return the new checkpoint id."""
    tensors = {k: v.detach().cpu().float().numpy() for k, v in tokenizer.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "config": tokenizer.config.to_json(),
        "summary": json.dumps(summary or {}, sort_keys=True),
        "id_scheme": ID_SCHEME,
    }
    with atomic_path(path) as tmp:
        write_safetensors(tmp, tensors, metadata)
    return content_id(metadata["config"], tensors)


#: How new checkpoints' ids are computed (:func:`content_id`).
ID_SCHEME = "content-v1"


def content_id(config_json: str, tensors: dict[str, Any]) -> str:
    """sha256 of the config (as stored) and every tensor's name, dtype, shape and bytes,
    in name order: what makes codes, and nothing else."""
    import hashlib

    import numpy as np

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


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read a ``.safetensors`` checkpoint (or a weights-only ``.pt``); clean errors only."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    config_dict, state, summary, ident = _read(path)
    try:
        config = TokenizerConfig.from_dict(config_dict)
    except (ConfigError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: checkpoint config is invalid: {exc}") from None
    if config.features.dim is None:
        raise FormatError(f"{path}: checkpoint config has no features.dim")
    # Build on the meta device first: a hostile config cannot make us allocate anything
    # before its shapes are checked against the tensors the file really holds.
    try:
        with torch.device("meta"):
            expected = Tokenizer(config).state_dict()
    except (ValueError, TypeError, RuntimeError) as exc:
        raise FormatError(f"{path}: checkpoint config is unusable: {exc}") from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected tensors {', '.join(unexpected[:5])}")
        raise FormatError(f"{path}: not a checkpoint for its config ({'; '.join(parts)})")
    for name, tensor in state.items():
        want = expected[name]
        if tuple(tensor.shape) != tuple(want.shape) or not tensor.is_floating_point():
            raise FormatError(
                f"{path}: tensor {name} has shape {list(tensor.shape)} {tensor.dtype}, "
                f"expected {list(want.shape)} float"
            )
        if not torch.isfinite(tensor).all():
            raise FormatError(f"{path}: tensor {name} holds NaN or Inf")
    tokenizer = Tokenizer(config)  # now no larger than the tensors already read
    tokenizer.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    tokenizer.eval()
    return Checkpoint(tokenizer.to(device), ident, path, summary)


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
