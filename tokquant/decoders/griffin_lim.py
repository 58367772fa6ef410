"""Griffin-Lim as a :class:`~tokquant.decoders.Decoder`: log-mel and fbank features back
to audio by least squares and phase estimation (:func:`tokquant.decoders.mel.to_audio`),
for listening checks. No mel match: its magnitudes are the features' already."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from tokquant.decoders.base import Decoder
from tokquant.decoders.mel import to_audio
from tokquant.errors import InputError

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer


class GriffinLim(Decoder):
    name = identity = "griffin-lim"

    def __init__(self, n_iter: int = 32) -> None:
        self.n_iter = n_iter

    def check(self, tok: Tokenizer) -> None:
        kind = tok.config.frontend.kind
        if kind not in ("logmel", "fbank"):
            where = f"{tok.checkpoint_path}: " if tok.checkpoint_path is not None else ""
            raise InputError(
                f"{where}{kind} tokens decode to audio only through a vocoder trained for them "
                f"(train-vocoder, then `vocoder`); Griffin-Lim inverts logmel and fbank "
                f"features"
            )

    def waveform(self, tok: Tokenizer, features: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_audio(tok.config.frontend, features, self.n_iter))
