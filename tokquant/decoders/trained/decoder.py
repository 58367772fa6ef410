"""A decoder from ``tokquant train-vocoder`` (:mod:`tokquant.decoders.trained.network`, its file
:mod:`tokquant.formats.vocoder`) as a :class:`~tokquant.decoders.Decoder`: made for one
tokenizer, refused for any other; decoded in chunks; the mel match on by default, as
measured on the decoders trained here (README)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from tokquant.decoders.base import Decoder
from tokquant.decoders.chunks import frame_offset, vocode
from tokquant.decoders.mel import MEL_MATCH
from tokquant.decoders.trained.file import load_vocoder
from tokquant.errors import InputError

if TYPE_CHECKING:
    from tokquant.decoders.trained.file import VocoderFile
    from tokquant.decoders.trained.network import Vocoder
    from tokquant.tokenizer.model import Tokenizer


class TrainedDecoder(Decoder):
    mel_match = MEL_MATCH

    def __init__(self, loaded: VocoderFile) -> None:
        self.net: Vocoder = loaded.vocoder
        self.checkpoint_id, self.identity = loaded.checkpoint_id, loaded.id
        self.name = loaded.path.name

    @classmethod
    def open(cls, path: Path) -> TrainedDecoder:
        return cls(load_vocoder(path))

    def check(self, tok: Tokenizer) -> None:
        config, front = self.net.config, tok.config.frontend
        if tok.checkpoint_id is not None and self.checkpoint_id != tok.checkpoint_id:
            raise InputError(
                f"{self.name}: a vocoder for another tokenizer (checkpoint "
                f"{self.checkpoint_id[:12]}, not {tok.checkpoint_id[:12]}); train "
                f"one for this checkpoint with train-vocoder"
            )
        if (config.sample_rate, config.hop) != (front.sample_rate, front.hop_length):
            raise InputError(
                f"{self.name}: decodes {config.sample_rate} Hz audio, {config.hop} "
                f"samples per frame; this tokenizer's frames are "
                f"{front.hop_length} samples at {front.sample_rate} Hz"
            )
        if config.feature_dim != int(tok.mean.numel()):
            raise InputError(
                f"{self.name}: reads {config.feature_dim} features per frame; this "
                f"tokenizer decodes {int(tok.mean.numel())}"
            )
        self.net = self.net.to(tok.mean.device)

    def waveform(self, tok: Tokenizer, features: np.ndarray) -> torch.Tensor:
        return vocode(self.net, features, frame_offset(tok, self.net))
