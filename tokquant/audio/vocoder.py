"""Features back to audio: Griffin-Lim through an inverted mel filterbank.

For listening checks, not a neural vocoder's quality: the mel (or Kaldi fbank) energies
are mapped back to a linear spectrogram by least squares (clamped at 0) and the phase is
estimated by Griffin-Lim, from a fixed random start so the output is repeatable.
"""

from __future__ import annotations

import numpy as np
import torch

from tokquant.audio._torchaudio import torchaudio
from tokquant.audio.frontend import mel_banks
from tokquant.config import FrontendConfig
from tokquant.errors import InputError

#: Kaldi's pre-emphasis coefficient, undone after Griffin-Lim for fbank.
_PREEMPH = 0.97


@torch.no_grad()
def to_audio(config: FrontendConfig, features: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """Approximate waveform ``[n]`` at ``config.sample_rate`` from ``[T, n_mels]``
    log-mel or fbank features."""
    c = config
    if c.kind not in ("logmel", "fbank"):
        raise InputError(f"`audio` needs a logmel or fbank front end, this checkpoint has {c.kind}")
    energies = torch.from_numpy(np.asarray(features, dtype=np.float32)).exp()  # [T, n_mels]
    banks, n_fft = _filterbank(c)  # [n_mels, n_freq]
    spec = (energies @ torch.linalg.pinv(banks).T).clamp(min=0.0).T  # [n_freq, T], |X|^power
    gl = torchaudio()[1].GriffinLim(
        n_fft=n_fft, win_length=c.win_length, hop_length=c.hop_length, power=c.power, n_iter=n_iter
    )
    torch.manual_seed(0)  # Griffin-Lim starts from random phase: make it repeatable
    wave = gl(spec)
    if c.kind == "fbank":
        wave = _deemphasis(wave) / 32768.0
    # Griffin-Lim centres frame t on sample t * hop; ours is centred on first_centre + t * hop.
    wave = torch.cat([torch.zeros(c.first_centre), wave])
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    return (wave / peak * 0.9 if peak > 1.0 else wave).numpy()


def _filterbank(c: FrontendConfig) -> tuple[torch.Tensor, int]:
    kaldi = torchaudio()[2]
    if c.kind == "fbank":
        n_fft = 1 << (c.win_length - 1).bit_length()  # Kaldi rounds to a power of two
        banks, _ = kaldi.get_mel_banks(
            c.n_mels, n_fft, float(c.sample_rate), c.f_min, c.f_max or 0.0, 100.0, -500.0, 1.0
        )
        return torch.nn.functional.pad(banks, (0, 1)), n_fft  # Kaldi drops the Nyquist bin
    return mel_banks(c).T, c.n_fft


def _deemphasis(wave: torch.Tensor) -> torch.Tensor:
    a = torch.tensor([1.0, -_PREEMPH])
    b = torch.tensor([1.0, 0.0])
    scale = wave.abs().max().clamp(min=1.0)
    return torchaudio()[0].lfilter(wave / scale, a, b, clamp=False) * scale
