"""The decoder interface and the one decoding pipeline (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from tokquant.decoders.mel import match_mel
from tokquant.errors import InputError

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer


class Decoder:
    """A way from a tokenizer's decoded features ``[T, F]`` to its audio.

    ``waveform`` returns float32 audio at the tokenizer's rate whose sample ``n`` is
    sample ``n`` of the audio the tokens were encoded from. ``mel_match`` is the
    strength of the mel match :func:`decode` applies unless told otherwise (None: the
    step does not apply to this decoder). ``identity`` is what decoded outputs record
    to tell one decoder from another (a file's sha256, a folder's name)."""

    name: str = "decoder"
    identity: str = "decoder"
    mel_match: float | None = None

    def check(self, tok: Tokenizer) -> None:
        """InputError (one line) when this decoder cannot decode ``tok``'s features."""

    def waveform(self, tok: Tokenizer, features: np.ndarray) -> torch.Tensor:
        raise NotImplementedError


def decode(
    decoder: Decoder, tok: Tokenizer, features: np.ndarray, mel_match: float | None = None
) -> torch.Tensor:
    """``features`` ``[T, F]`` -> audio through ``decoder``; for a log-mel tokenizer each
    frame's band energies are then moved ``mel_match`` (None: the decoder's own default)
    of the way toward the features' (:func:`~tokquant.decoders.mel.match_mel`). Audio
    that is not finite is refused, never returned."""
    wave = decoder.waveform(tok, features)
    strength = decoder.mel_match if mel_match is None else mel_match
    front = tok.config.frontend
    if decoder.mel_match is not None and strength and front.kind == "logmel":
        wave = match_mel(front, wave, features, strength)
    if not bool(torch.isfinite(wave).all()):
        raise InputError(
            f"{decoder.name}: decoded audio holds NaN or Inf (its weights or "
            f"normalisation are broken); nothing written"
        )
    return wave


def check_mel_match(value: float | None) -> None:
    """A mel match is None (the decoder's own) or a number in [0, 1]."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(f"`mel_match` must be a number in [0, 1], found {value!r}")
