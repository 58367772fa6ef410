"""Vocoder file: a trained waveform decoder's config and tensors as safetensors, no pickle
(bytes only: :mod:`tokquant.decoders.trained.file` builds the network from them).

Layout: the decoder's ``state_dict`` tensors and string metadata:

===================  =====================================================
``format``           ``tokquant-vocoder``
``format_version``   ``1``
``tokquant``         version that wrote it
``config``           the decoder's config as JSON
``checkpoint_id``    the id of the tokenizer checkpoint it decodes
``summary``          JSON of training results (steps, losses, seconds)
===================  =====================================================

A decoder is made for one tokenizer: decoding another's tokens is refused by id (and by
rate and feature size), since its features would mean something else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokquant import __version__
from tokquant.errors import FormatError, InputError
from tokquant.formats._safetensors import read_tagged, write_safetensors
from tokquant.storage.atomic import atomic_path
from tokquant.storage.digest import file_sha256
from tokquant.storage.safe_json import loads as json_loads

FORMAT = "tokquant-vocoder"
FORMAT_VERSION = "1"


@dataclass
class VocoderBytes:
    """What a vocoder file holds, before any network is built from it."""

    path: Path
    config: Any
    tensors: dict[str, torch.Tensor]
    checkpoint_id: str
    summary: dict[str, Any]
    id: str


def write_vocoder(
    path: Path,
    config: dict[str, Any],
    tensors: dict[str, Any],
    checkpoint_id: str,
    summary: dict[str, Any] | None = None,
) -> str:
    """Write atomically; return the file's sha256."""
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "config": json.dumps(config, sort_keys=True),
        "checkpoint_id": checkpoint_id,
        "summary": json.dumps(summary or {}, sort_keys=True),
    }
    with atomic_path(Path(path)) as tmp:
        write_safetensors(tmp, tensors, metadata)
    return file_sha256(Path(path))


def check_weight(tensor: torch.Tensor, where: str) -> None:
    """A decoder weight is a real floating-point tensor of finite values: an integer or
    complex tensor, or NaN/Inf, would decode to garbage (or a traceback) far from here."""
    if not tensor.is_floating_point():
        raise FormatError(
            f"{where} has dtype {str(tensor.dtype).removeprefix('torch.')}, not floating point"
        )
    if not torch.isfinite(tensor).all():
        raise FormatError(f"{where} holds NaN or Inf")


def check_decoder_tensors(
    expected: dict[str, torch.Tensor], state: dict[str, Any], where: str
) -> None:
    """``state`` holds exactly the decoder's tensors (``expected``: its ``state_dict``,
    on the meta device or not), each of its shape, real floating point and finite; a
    :class:`FormatError` ``where: ...`` otherwise. A vocoder file and a train-vocoder
    state are both checked so."""
    if set(expected) != set(state):
        raise FormatError(
            f"{where}: not a vocoder of its config (tensors differ: "
            f"{', '.join(sorted(set(expected) ^ set(state))[:3])})"
        )
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(
            expected[name].shape
        ):
            shape = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor)
            raise FormatError(
                f"{where}: tensor {name} has shape {shape}, expected {list(expected[name].shape)}"
            )
        check_weight(tensor, f"{where}: tensor {name}")


def read_vocoder(path: Path) -> VocoderBytes:
    """A vocoder file's config (parsed JSON), tensors, checkpoint id, summary and sha256."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: vocoder not found")
    meta, state = read_tagged(path, FORMAT, FORMAT_VERSION, "vocoder")
    config = json_loads(meta.get("config") or "null", f"{path}: vocoder config")
    summary = json_loads(meta.get("summary") or "{}", f"{path}: vocoder summary")
    return VocoderBytes(
        path,
        config,
        state,
        str(meta.get("checkpoint_id", "")),
        summary if isinstance(summary, dict) else {},
        file_sha256(path),
    )
