"""``tokquant.load``: a checkpoint as a ready :class:`~tokquant.tokenizer.Tokenizer`."""

from __future__ import annotations

from pathlib import Path

import torch

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
    from tokquant.devices import resolve_device
    from tokquant.tokenizer.checkpoint import load_checkpoint

    # a torch.device is checked as its name is: cuda without CUDA is one clear error
    where = resolve_device(device if isinstance(device, str) else str(torch.device(device)))
    checkpoint = load_checkpoint(Path(path), where)
    tokenizer = checkpoint.tokenizer
    tokenizer.checkpoint_id = checkpoint.id
    tokenizer.checkpoint_path = checkpoint.path
    return tokenizer
