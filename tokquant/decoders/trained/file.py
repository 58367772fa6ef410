"""A trained decoder's own load and save: the network built from a vocoder file's
config and tensors (``formats.vocoder`` knows the bytes, this module the network)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokquant.decoders.trained.network import Vocoder, VocoderConfig
from tokquant.errors import FormatError
from tokquant.formats.vocoder import check_decoder_tensors, read_vocoder, write_vocoder


@dataclass
class VocoderFile:
    vocoder: Vocoder
    checkpoint_id: str
    id: str
    path: Path
    summary: dict[str, Any]


def save_vocoder(
    vocoder: Vocoder, path: Path, checkpoint_id: str, summary: dict[str, Any] | None = None
) -> str:
    """Write atomically; return the file's sha256."""
    tensors = {k: v.detach().cpu().float().numpy() for k, v in vocoder.state_dict().items()}
    return write_vocoder(Path(path), vocoder.config.to_dict(), tensors, checkpoint_id, summary)


def load_vocoder(path: Path, device: torch.device | str = "cpu") -> VocoderFile:
    """Read a vocoder file; any problem is one :class:`FormatError` line."""
    file = read_vocoder(Path(path))
    path, state, raw = file.path, file.tensors, file.config
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
    return VocoderFile(vocoder.to(device), file.checkpoint_id, file.id, path, file.summary)
