"""Vocoder networks as decoders: the network a spec opens, a network's decoder, the
mel match's defaults and check. The decoders themselves live in :mod:`tokquant.decoders`
(chunked decoding in :mod:`tokquant.decoders.chunks`, re-exported here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tokquant.decoders.chunks import CHUNK_FRAMES, frame_offset, vocode
from tokquant.errors import InputError
from tokquant.vocoder.model import Vocoder

if TYPE_CHECKING:
    from tokquant.vocoder.pretrained import PretrainedVocoder


def open_vocoder(vocoder: Any, tok: Any) -> Any:
    """The network of the decoder ``vocoder`` names (a train-vocoder file, a Vocos or
    BigVGAN folder or Hub id, or one loaded), checked for ``tok`` and on its device:
    :func:`tokquant.decoders.open_decoder`, for callers that want the module itself."""
    from tokquant.decoders import open_decoder

    return open_decoder(vocoder, tok).net


def as_decoder(net: Any) -> Any:
    """A vocoder network (a trained :class:`Vocoder` or a Vocos/BigVGAN model) as the
    :class:`~tokquant.decoders.Decoder` that runs it."""
    from tokquant.decoders.pretrained import PretrainedDecoder
    from tokquant.decoders.trained import TrainedDecoder
    from tokquant.formats.vocoder import VocoderFile

    if getattr(net, "aligned_to_input", False):
        return PretrainedDecoder(net)
    file_id = getattr(net, "file_id", "")
    return TrainedDecoder(VocoderFile(net, "", file_id, Path(file_id or "vocoder"), {}))


def decode_features(
    vocoder: Vocoder | PretrainedVocoder,
    tok: Any,
    features: np.ndarray | torch.Tensor,
    mel_match: float | None = None,
) -> torch.Tensor:
    """Audio of ``tok``'s decoded ``features`` through the network ``vocoder``: the one
    pipeline, :func:`tokquant.decoders.decode` (mel match, finite audio)."""
    from tokquant.decoders import decode

    return decode(as_decoder(vocoder), tok, np.asarray(features, dtype=np.float32), mel_match)


def default_mel_match(vocoder: Any) -> float:
    """The mel match the network ``vocoder`` gets unless told: its decoder's own
    (:data:`~tokquant.audio.vocoder.MEL_MATCH` for a decoder trained here, where it was measured; 0 for a Vocos or
    BigVGAN model, whose published weights it was never measured on)."""
    return float(as_decoder(vocoder).mel_match or 0.0)


def check_mel_match(value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(f"`mel_match` must be a number in [0, 1], found {value!r}")


__all__ = [
    "CHUNK_FRAMES",
    "as_decoder",
    "check_mel_match",
    "decode_features",
    "default_mel_match",
    "frame_offset",
    "open_vocoder",
    "vocode",
]
