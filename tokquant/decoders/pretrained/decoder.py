"""A Vocos or BigVGAN model (:mod:`tokquant.decoders.pretrained.networks`, its folder
:mod:`tokquant.formats.pretrained_vocoder`) as a :class:`~tokquant.decoders.Decoder`:
for a tokenizer on that model's own mel; its output is the package model's, from sample
0 (the mel match is off unless asked for: it was never measured on published weights)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tokquant.decoders.base import Decoder
from tokquant.decoders.chunks import vocode
from tokquant.decoders.pretrained.networks import check_frontend, load_pretrained

if TYPE_CHECKING:
    from tokquant.decoders.pretrained.networks import PretrainedVocoder
    from tokquant.tokenizer.model import Tokenizer


class PretrainedDecoder(Decoder):
    mel_match = 0.0

    def __init__(self, net: PretrainedVocoder) -> None:
        self.net = net
        self.identity = str(net.source)
        self.name = Path(str(net.source)).name or str(net.source)

    @classmethod
    def open(cls, source: Any) -> PretrainedDecoder:
        return cls(load_pretrained(source))

    def check(self, tok: Tokenizer) -> None:
        check_frontend(self.net, tok.config.frontend)
        self.net = self.net.to(tok.mean.device)

    def waveform(self, tok: Tokenizer, features: np.ndarray) -> torch.Tensor:
        return vocode(self.net, features, 0)
