"""``tokquant.load``: a checkpoint as a ready :class:`~tokquant.tokenizer.Tokenizer`."""

from __future__ import annotations

from pathlib import Path

import torch

from tokquant.devices import resolve_device
from tokquant.errors import InputError
from tokquant.tokenizer.checkpoint import load_checkpoint
from tokquant.tokenizer.model import Tokenizer


def load(path: str | Path, device: str | torch.device = "cpu") -> Tokenizer:
    """The tokenizer a checkpoint holds, on ``device`` (``cpu``, ``cuda``, ``cuda:N``,
    ``auto``), in eval mode, its checkpoint's id and file in ``checkpoint_id`` and
    ``checkpoint_path``. Its codes are the
    ones ``tokquant encode`` writes for the same audio or features.

    Example:
        >>> tok = tokquant.load("model.safetensors", device="cuda")
        >>> codes = tok.encode_audio(wave, 16000)      # [T, G] int64 on cuda
        >>> features = tok.decode(codes)               # [T, F]
    """
    # a torch.device is checked as its name is: cuda without CUDA is one clear error
    where = resolve_device(device if isinstance(device, str) else str(torch.device(device)))
    checkpoint = load_checkpoint(Path(path), where)
    tokenizer = checkpoint.tokenizer
    tokenizer.checkpoint_id = checkpoint.id
    tokenizer.checkpoint_path = checkpoint.path
    return tokenizer


def open_tokenizer(
    checkpoint: str | Path, device: str, ssl_weights: str | Path | None = None
) -> Tokenizer:
    """The checkpoint's tokenizer on ``device``, its SSL encoder read from
    ``ssl_weights`` when given (checked against the sha256 the checkpoint recorded)."""
    tok = load(Path(checkpoint), device)
    if ssl_weights is not None:
        frontend = tok.config.frontend
        if frontend.kind != "ssl":
            raise InputError(f"`ssl_weights`: {checkpoint} has no SSL front end ({frontend.kind})")
        frontend.weights = str(ssl_weights)
    return tok
