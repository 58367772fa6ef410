"""Vocoder file: a trained waveform decoder as safetensors, no pickle.

Layout: the decoder's ``state_dict`` tensors and string metadata:

===================  =====================================================
``format``           ``tokquant-vocoder``
``format_version``   ``1``
``tokquant``         version that wrote it
``config``           the :class:`~tokquant.vocoder.model.VocoderConfig` as JSON
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
class VocoderFile:
    vocoder: Any  # tokquant.vocoder.model.Vocoder
    checkpoint_id: str
    id: str
    path: Path
    summary: dict[str, Any]


def save_vocoder(
    vocoder: Any, path: Path, checkpoint_id: str, summary: dict[str, Any] | None = None
) -> str:
    """Write atomically; return the file's sha256."""
    tensors = {k: v.detach().cpu().float().numpy() for k, v in vocoder.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tokquant": __version__,
        "config": json.dumps(vocoder.config.to_dict(), sort_keys=True),
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


def load_vocoder(path: Path, device: torch.device | str = "cpu") -> VocoderFile:
    """Read a vocoder file; any problem is one :class:`FormatError` line."""
    from tokquant.vocoder.model import Vocoder, VocoderConfig

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: vocoder not found")
    meta, state = read_tagged(path, FORMAT, FORMAT_VERSION, "vocoder")
    raw = json_loads(meta.get("config") or "null", f"{path}: vocoder config")
    try:
        config = VocoderConfig.from_dict(raw if isinstance(raw, dict) else {})
        with torch.device("meta"):  # shapes first: a hostile config allocates nothing
            expected = Vocoder(config).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"{path}: vocoder config is invalid: {exc}") from None
    check_decoder_tensors(expected, state, str(path))
    if not bool((state["std"] > 0).all()):
        raise FormatError(f"{path}: tensor std holds a value <= 0 (features are divided by it)")
    vocoder = Vocoder(config)
    vocoder.load_state_dict(state)
    vocoder.eval()
    summary = json_loads(meta.get("summary") or "{}", f"{path}: vocoder summary")
    return VocoderFile(
        vocoder.to(device),
        str(meta.get("checkpoint_id", "")),
        file_sha256(path),
        path,
        summary if isinstance(summary, dict) else {},
    )
