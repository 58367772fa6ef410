"""Waveforms in memory as the front end reads audio files: the same samples, the same codes.

:class:`WaveformReader` has :class:`~tokquant.audio.io.AudioReader`'s interface, so a
tensor or array goes through the very code a file does (ranged resampling, channel mix,
block-aligned features). Samples are converted as libsndfile converts a file's samples
when soundfile reads them as float32: integer PCM divided by its full scale (int16 by
2^15, int32 by 2^31, int8 by 2^7; uint8 is offset binary, ``(x - 128) / 128``), floats
cast to float32. So an int16 array and the wav file written from it give the same codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Full scale of each integer PCM dtype, as libsndfile normalises it.
_FULL_SCALE = {
    np.dtype(np.int8): 2**7,
    np.dtype(np.int16): 2**15,
    np.dtype(np.int32): 2**31,
    np.dtype(np.int64): 2**63,
}


def as_samples(wave: Any, *, what: str = "wave") -> np.ndarray:
    """``wave`` (tensor or array, ``[N]``, ``[C, N]`` or soundfile's ``[N, C]``: the
    longer side is time, float or integer PCM) as float32 ``[N, C]``; a ``ValueError``
    naming the problem otherwise."""
    if hasattr(wave, "detach"):  # a torch tensor, on any device, in any float dtype
        # start-up time: torch
        import torch

        if wave.is_meta:
            raise ValueError(f"{what} is a meta tensor: it has a shape but holds no samples")
        if wave.layout != torch.strided:
            raise ValueError(f"{what} is a {wave.layout} tensor; pass {what}.to_dense()")
        wave = wave.detach().cpu()
        wave = wave.float() if wave.is_floating_point() else wave
        wave = wave.numpy() if wave.dtype != torch.bfloat16 else wave.float().numpy()
    array = np.asarray(wave)
    if array.ndim not in (1, 2):
        raise ValueError(f"{what} must be [N] or [channels, N]. Found shape {list(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{what} is empty. Found shape {list(array.shape)}")
    if array.dtype.kind == "f":
        samples = array.astype(np.float32)
    elif array.dtype in _FULL_SCALE:
        samples = (array.astype(np.float64) / _FULL_SCALE[array.dtype]).astype(np.float32)
    elif array.dtype == np.uint8:
        samples = ((array.astype(np.float64) - 128) / 128).astype(np.float32)
    else:
        raise ValueError(
            f"{what} must hold float or integer PCM samples. Found dtype {array.dtype}"
        )
    if samples.ndim == 1:
        samples = samples.reshape(1, -1)
    elif samples.shape[0] > samples.shape[1]:  # [N, C], as soundfile.read returns audio
        samples = samples.T
    samples = np.ascontiguousarray(samples).T
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argmax(bad.any(axis=1)))
        raise ValueError(f"{what} holds NaN or Inf, first at sample {first}")
    return np.ascontiguousarray(samples)


def check_channel(channel: Any, channels: int, *, what: str = "wave") -> int | str | None:
    """``channel`` as :meth:`Tokenizer.audio_features` takes it: None (mono, or the
    average of two channels), ``"mix"`` (the average of any number), or a channel index.
    More than two channels with None is refused: a ``[B, N]`` batch (what
    ``default_collate`` makes of equal-length clips) looks exactly like ``[C, N]``
    audio, and averaging B utterances into one is never what was meant."""
    if channel is None:
        if channels > 2:
            raise ValueError(
                f"{what} has {channels} rows: for a batch of {channels} waves pass a list "
                f"(list({what})) or batched=True; for {channels}-channel audio pass "
                f"channel=<index>, or channel='mix' to average them"
            )
        return None
    if isinstance(channel, str) and channel == "mix":
        return "mix"
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise ValueError(
            f"channel must be None, 'mix' or a channel index (int). Found: {channel!r}"
        )
    if not 0 <= int(channel) < channels:
        raise ValueError(f"{what} has {channels} channel(s), no channel {channel}")
    return int(channel)


def check_rate(sample_rate: Any) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise ValueError(f"sample_rate must be an int (Hz). Found: {sample_rate!r}")
    if not 1 <= int(sample_rate) <= 10_000_000:
        raise ValueError(f"sample_rate must be in [1, 10000000] Hz. Found: {sample_rate!r}")
    return int(sample_rate)


class WaveformReader:
    """``AudioReader``'s interface over samples ``[N, C]`` float32 in memory."""

    def __init__(self, samples: np.ndarray, sample_rate: int, path: str = "wave") -> None:
        self.samples = samples
        self.sample_rate = sample_rate
        self.num_samples, self.channels = samples.shape
        self.path = path

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (clamped to the wave) as float32 ``[n, channels]``."""
        start = max(0, min(start, self.num_samples))
        stop = max(start, min(stop, self.num_samples))
        return self.samples[start:stop]

    def __enter__(self) -> WaveformReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
