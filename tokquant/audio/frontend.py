"""Audio front ends (log-mel, Kaldi fbank, MFCC) on torchaudio, streamed in chunks.

Griffin-Lim, the way back to audio, lives in :mod:`tokquant.decoders.mel`.

By default frames are not centred: frame ``t`` covers resampled samples
``[t * hop, t * hop + n)`` (``n``: ``FrontendConfig.frame_length``), so a signal of ``L``
samples has ``1 + (L - n) // hop`` frames (0 when ``L < n``) and any frame range can be computed
from exactly the samples it covers. Streaming reads each chunk's samples (plus the
resampler's filter margin) and nothing else, which is what makes chunked features, and
so tokens, equal to whole-file ones while memory stays bounded by the chunk size.
A pretrained vocoder's mel may mirror ``reflect_pad`` samples onto each end first
(``torch.stft(center=True)``); :func:`read_frames` mirrors them when a block reaches past
an end, so that framing streams the same way.

Floating-point results of an FFT or a matrix product can change in the last bit with the
number of frames computed together, which could flip a code sitting on a boundary. So
features are always computed in blocks of :data:`BLOCK_FRAMES` frames aligned to the
start of the file, each from the same samples whatever the chunking; a chunk is a whole
number of blocks. Chunked and whole-file features are then bitwise identical by
construction, and so are the tokens when the tokenizer also works block by block.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from tokquant.audio._torchaudio import torchaudio
from tokquant.audio.codec import CodecFrontEnd
from tokquant.audio.io import AudioReader
from tokquant.audio.resample import Resampling
from tokquant.audio.ssl import SSLFrontEnd
from tokquant.errors import InputError
from tokquant.tokenizer.config import FrontendConfig

if TYPE_CHECKING:
    from tokquant.audio.ssl import SSLFrontEnd

AnyFrontEnd = Union["FrontEnd", "SSLFrontEnd", "CodecFrontEnd"]

#: Unit of computation; chunks are multiples of it.
BLOCK_FRAMES = 256
#: Default chunk: about 30 s of frames at 100 frames/s.
DEFAULT_CHUNK_FRAMES = 12 * BLOCK_FRAMES


class FrontEnd:
    """Compute features from a mono waveform at ``config.sample_rate``.

    Building one imports torchaudio (in the calling thread, so loader threads never race
    to import it)."""

    def __init__(self, config: FrontendConfig) -> None:
        if config.kind not in ("logmel", "fbank", "mfcc"):
            raise ValueError("FrontEnd needs frontend.kind logmel, fbank or mfcc")
        torchaudio()
        self.config = config
        self._mel = None
        self._dct = None

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    def num_frames(self, num_samples: int) -> int:
        return self.config.num_frames(num_samples)

    def sample_range(self, f0: int, f1: int) -> tuple[int, int]:
        """Samples covered by frames ``[f0, f1)`` (below 0 or past the end where the
        framing mirrors the ends)."""
        c = self.config
        start = f0 * c.hop_length - c.reflect_pad
        return start, start + (f1 - f0 - 1) * c.hop_length + c.frame_length

    def windows(self, total: int) -> list[tuple[int, int, int, int]]:
        """Blocks of :data:`BLOCK_FRAMES`, each computed from its own samples alone
        (``(own_start, own_stop, input_start, input_stop)``, input = own)."""
        return [(f0, min(total, f0 + BLOCK_FRAMES)) * 2 for f0 in range(0, total, BLOCK_FRAMES)]

    @torch.no_grad()
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """``[n]`` float32 samples -> ``[num_frames(n), feature_dim]`` float32 features."""
        c = self.config
        if c.kind == "fbank":
            return self._fbank(wave)
        log_mel = self._log_mel(wave)
        if c.kind == "mfcc":
            if self._dct is None:
                self._dct = torchaudio()[0].create_dct(c.n_mfcc, c.n_mels, norm="ortho")
            return log_mel @ self._dct
        return log_mel

    def _log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """torchaudio's ``MelSpectrogram`` step by step (the same calls, so the same
        bits), with BigVGAN's ``power_eps`` between the STFT and the power."""
        c = self.config
        if self._mel is None:
            transforms = torchaudio()[1]
            self._mel = (
                transforms.Spectrogram(
                    n_fft=c.n_fft,
                    win_length=c.win_length,
                    hop_length=c.hop_length,
                    power=None,
                    center=False,
                ),
                mel_banks(c),
            )
        stft, banks = self._mel
        spec = stft(wave)  # [freq, T] complex
        if c.power_eps:
            spec = (torch.view_as_real(spec).pow(2).sum(-1) + c.power_eps).pow(c.power / 2)
        else:
            spec = spec.abs() if c.power == 1.0 else spec.abs().pow(c.power)
        mel = torch.matmul(spec.transpose(-1, -2), banks)  # [T, n_mels]
        return mel.clamp(min=c.log_floor).log().contiguous()

    def _fbank(self, wave: torch.Tensor) -> torch.Tensor:
        kaldi = torchaudio()[2]
        c = self.config
        # Kaldi takes lengths in ms and truncates sample counts: nudge up so it gets ours.
        return kaldi.fbank(
            wave.unsqueeze(0) * 32768.0,
            sample_frequency=c.sample_rate,
            frame_length=(c.win_length + 0.01) * 1000.0 / c.sample_rate,
            frame_shift=(c.hop_length + 0.01) * 1000.0 / c.sample_rate,
            num_mel_bins=c.n_mels,
            low_freq=c.f_min,
            high_freq=c.f_max or 0.0,
            dither=0.0,
            snip_edges=True,
        )


def mel_banks(c: FrontendConfig) -> torch.Tensor:
    """``[n_fft // 2 + 1, n_mels]`` mel filters of a log-mel or MFCC front end (the
    features' own, and Griffin-Lim's way back)."""
    return torchaudio()[0].melscale_fbanks(
        c.n_fft // 2 + 1,
        c.f_min,
        c.f_max or c.sample_rate / 2,
        c.n_mels,
        c.sample_rate,
        norm=c.mel_norm,
        mel_scale=c.mel_scale,
    )


def build_frontend(config: FrontendConfig, device: torch.device | str = "cpu") -> AnyFrontEnd:
    """The front end a config describes; an SSL model is loaded onto ``device`` and its
    weights checked against the sha256 the config recorded. Build one per job (a
    :class:`~tokquant.tokenizer.Tokenizer` holds its own) and pass it down: a mel
    filterbank costs 1.3 ms to build, five times the features of a 3 s utterance, and an
    SSL model seconds."""
    if config.kind == "ssl":
        frontend = SSLFrontEnd(config, device)
        frontend.check_weights(config.weights_sha256)
        return frontend
    if config.kind == "codec":
        codec = CodecFrontEnd(config, device)
        codec.check_weights(config.weights_sha256)
        return codec
    return FrontEnd(config)


# Streaming ---------------------------------------------------------------------------------


class AudioSource:
    """One channel (or the mix) of an audio file, resampled to the front end's rate."""

    def __init__(self, reader: AudioReader, target_rate: int, channel: int | None) -> None:
        if channel is not None and not 0 <= channel < reader.channels:
            raise InputError(
                f"{reader.path}: has {reader.channels} channel(s), no channel {channel}"
            )
        self.reader = reader
        self.channel = channel
        self.target_rate = target_rate
        self._resampling = Resampling.between(reader.sample_rate, target_rate)
        self.num_samples = self._resampling.output_length(reader.num_samples)

    def _mono(self, data: np.ndarray) -> np.ndarray:
        return data.mean(axis=1) if self.channel is None else data[:, self.channel]

    def peak(self, start: int, stop: int) -> float:
        """The largest absolute sample in ``[start, stop)`` (for error messages)."""
        return float(self.read(start, stop).abs().max()) if stop > start else 0.0

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Resampled samples ``[start, stop)``."""
        rate = self.reader.sample_rate
        if rate == self.target_rate:
            return torch.from_numpy(np.ascontiguousarray(self._mono(self.reader.read(start, stop))))
        in0, in1 = self._resampling.input_range(start, stop, self.reader.num_samples)
        chunk = torch.from_numpy(np.ascontiguousarray(self._mono(self.reader.read(in0, in1))))
        return self._resampling.resample(chunk, in0, start, stop)


def read_frames(source: AudioSource, start: int, stop: int) -> torch.Tensor:
    """Samples ``[start, stop)``, the ones before 0 and from the end on mirrored from
    inside (``reflect`` padding: sample ``-k`` is sample ``k``)."""
    n = source.num_samples
    a, b = max(0, start), min(n, stop)
    wave = source.read(a, b)
    if (a, b) == (start, stop):
        return wave
    return torch.nn.functional.pad(wave[None], (a - start, stop - b), mode="reflect")[0]


def stream_features(
    path: Path,
    frontend: AnyFrontEnd,
    *,
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """Yield ``[t, dim]`` float32 feature chunks of an audio file, in order.

    ``chunk_frames`` is rounded up to whole blocks; ``None`` yields the whole file as one
    chunk (same values, more memory). Raises InputError (naming the
    file) for unreadable audio, NaN samples, or audio shorter than one frame.
    """
    with AudioReader(path) as reader:
        yield from reader_features(reader, frontend, channel=channel, chunk_frames=chunk_frames)


def reader_features(
    reader: Any,
    frontend: AnyFrontEnd,
    *,
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """:func:`stream_features` of an open reader: an :class:`AudioReader`, or anything
    with its ``path``, ``sample_rate``, ``num_samples``, ``channels`` and ``read`` (a
    waveform in memory, :class:`tokquant.audio.waveform.WaveformReader`)."""
    path = reader.path
    source = AudioSource(reader, frontend.config.sample_rate, channel)
    total = frontend.num_frames(source.num_samples)
    if total == 0:
        c = frontend.config
        raise InputError(
            f"{path}: audio is shorter than one frame ({source.num_samples} samples at "
            f"{c.sample_rate} Hz, a frame needs {c.min_samples})"
        )
    step = total if chunk_frames is None else max(1, chunk_frames)
    blocks: list[np.ndarray] = []
    held = 0
    for own0, own1, in0, in1 in frontend.windows(total):
        s0, s1 = frontend.sample_range(in0, in1)
        if getattr(frontend, "clip_end", False):  # a codec reads the file's true end
            s1 = min(s1, source.num_samples)
        feats = frontend.features(read_frames(source, s0, s1))
        if feats.shape[0] != in1 - in0:  # a front-end setting disagreeing with the formula
            raise InputError(
                f"{path}: front end gave {feats.shape[0]} frames for {in1 - in0}; "
                f"check the frontend config"
            )
        own = feats[own0 - in0 : own1 - in0].numpy()
        if not np.isfinite(own).all():  # finite samples can still overflow (1e30 ** 2)
            first = own0 + int(np.argmax(~np.isfinite(own).all(axis=1)))
            raise InputError(
                f"{path}: the front end gave NaN or Inf features, first at frame {first} "
                f"(audio far outside [-1, 1]? peak {source.peak(s0, s1):.3g})"
            )
        blocks.append(own)
        held += own1 - own0
        if held >= step or own1 == total:  # a chunk is whole windows
            yield np.concatenate(blocks).astype(np.float32, copy=False)
            blocks, held = [], 0


def audio_features(
    path: Path,
    frontend: AnyFrontEnd,
    *,
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
) -> np.ndarray:
    """All features of an audio file, ``[T, dim]``."""
    return np.concatenate(
        list(stream_features(path, frontend, channel=channel, chunk_frames=chunk_frames))
    )
