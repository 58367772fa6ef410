"""A codec's own decoder (EnCodec, DAC, Mimi through ``transformers``) as a
:class:`~tokquant.decoders.Decoder`: the features of a codec tokenizer are the codec's
quantized latents, and its decoder turns them into the audio ``model.decode`` gives for
the same codes. It decodes a tokenizer on that codec's latents (its own codes, or a
tokquant quantizer trained on them) and nothing else; it is what a codec tokenizer
decodes through unless told otherwise. No mel match: its output is the codec's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from tokquant.decoders.base import Decoder
from tokquant.errors import InputError

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer


class CodecDecoder(Decoder):
    name = "codec"

    def check(self, tok: Tokenizer) -> None:
        front = tok.config.frontend
        if front.kind != "codec":
            raise InputError(
                f"the codec decoder decodes tokenizers on a codec's latents; this one reads "
                f"{front.kind}"
            )
        self.name = self.identity = f"{front.model}:{(front.weights_sha256 or '')[:16]}"

    def waveform(self, tok: Tokenizer, features: np.ndarray) -> torch.Tensor:
        return tok.frontend().decode(torch.from_numpy(np.asarray(features, dtype=np.float32)))
