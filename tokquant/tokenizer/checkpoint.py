"""A tokenizer's own load and save: the model built from a checkpoint file's config and
tensors (``formats.checkpoint`` knows the bytes, this module the model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokquant.errors import ConfigError, FormatError
from tokquant.formats.checkpoint import read_checkpoint, write_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer


@dataclass
class Checkpoint:
    tokenizer: Tokenizer
    id: str
    path: Path
    summary: dict[str, Any]


def save_checkpoint(tokenizer: Tokenizer, path: Path, summary: dict[str, Any] | None = None) -> str:
    """Write atomically; return the new checkpoint id."""
    tensors = {k: v.detach().cpu().float().numpy() for k, v in tokenizer.state_dict().items()}
    return write_checkpoint(Path(path), tokenizer.config.to_json(), tensors, summary)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read a ``.safetensors`` checkpoint (or a weights-only ``.pt``); clean errors only."""
    file = read_checkpoint(Path(path))
    path, state = file.path, file.tensors
    try:
        config = TokenizerConfig.from_dict(file.config)
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
    return Checkpoint(tokenizer.to(device), file.id, path, file.summary)
