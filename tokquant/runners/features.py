"""Features of a job's sources, through one tokenizer's front end.

A :class:`FeatureReader` is made once per job with the front end the tokenizer owns (or,
for training, the one built for the config) and passed down; nothing looks a front end
up per input. Audio is streamed in chunks of whole blocks (see
:mod:`tokquant.audio.frontend`), so chunked and whole-input features are the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tokquant.audio.frontend import DEFAULT_CHUNK_FRAMES, AudioSource, reader_features
from tokquant.errors import InputError
from tokquant.sources import Source
from tokquant.tokenizer.config import TokenizerConfig

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer


class FeatureReader:
    """``[t, dim]`` features of sources: audio through ``frontend``, or (no front end)
    feature files read in ``layout``; checked against ``config.features.dim``."""

    def __init__(self, config: TokenizerConfig, frontend: Any | None, layout: str = "tc") -> None:
        self.config = config
        self.frontend = frontend
        self.layout = layout

    @classmethod
    def of(cls, tokenizer: Tokenizer, layout: str | None = None) -> FeatureReader:
        """The reader of ``tokenizer``'s inputs (its front end built here, in the calling
        thread, before any loader thread needs it)."""
        frontend = tokenizer.frontend() if tokenizer.sample_rate is not None else None
        return cls(tokenizer.config, frontend, layout or tokenizer.config.features.layout)

    def chunks(
        self, source: Source, chunk_frames: int | None = DEFAULT_CHUNK_FRAMES
    ) -> Iterator[np.ndarray]:
        """``source``'s features in chunks of ``chunk_frames`` (None: all at once)."""
        if self.frontend is not None:
            chunks = self._audio_chunks(source, chunk_frames)
        else:
            chunks = iter([source.read_features(self.layout)])
        want = self.config.features.dim
        for chunk in chunks:
            if want is not None and chunk.shape[1] != want:
                hint = (
                    " (is the file [dim, frames]? try `feature_layout='ct'`)"
                    if chunk.shape[0] == want
                    else ""
                )
                raise InputError(
                    f"{source.origin}: features have dim {chunk.shape[1]}, the "
                    f"checkpoint expects {want}{hint}"
                )
            yield chunk

    def _audio_chunks(self, source: Source, chunk_frames: int | None) -> Iterator[np.ndarray]:
        with source.open_audio() as reader:
            yield from reader_features(
                reader, self.frontend, channel=source.channel, chunk_frames=chunk_frames
            )

    def whole(self, source: Source) -> np.ndarray:
        """All of ``source``'s features, ``[T, dim]``."""
        return np.concatenate(list(self.chunks(source)))

    def expected_frames(self, source: Source) -> int | None:
        """Frames an audio source will give, from its header alone (None: a feature
        input, or a header that cannot be read, which fails later with a clean message)."""
        if self.frontend is None:
            return None
        length = source.audio_length()
        if length is None:
            return None
        samples, rate = length
        target = self.config.frontend.sample_rate
        return self.config.frontend.num_frames(-(-samples * target // rate))


def decode_codes(tok: Tokenizer, codes: np.ndarray) -> np.ndarray:
    """``[T, G]`` codes -> ``[T, F]`` float32 features."""
    c = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64)).to(tok.mean.device)
    return tok.decode(c).cpu().numpy().astype(np.float32)


def source_audio(item: Source, rate: int) -> np.ndarray:
    """An audio input whole: float32 mono (or its ``channel``) at ``rate``, resampled as
    the front end resamples it."""
    with item.open_audio() as reader:
        source = AudioSource(reader, rate, item.channel)
        total = source.num_samples
        out = np.empty(total, dtype=np.float32)  # the result's own size, nothing more
        block = _BLOCK_SECONDS * rate  # a whole number of the resampler's periods
        for start in range(0, total, block):  # so blocks give the whole input's samples
            stop = min(total, start + block)
            out[start:stop] = source.read(start, stop).numpy()
        return out


#: Seconds per block when an input is read whole. A block of whole seconds at the target
#: rate holds whole periods of any rational resampling (its phases repeat every
#: ``rate / gcd`` output samples), so the blocks' samples are the whole read's, bit for bit.
_BLOCK_SECONDS = 60
