"""Features back to audio: Griffin-Lim through an inverted mel filterbank, and the
mel match that moves a vocoder's band energies toward the features'.

Griffin-Lim is for listening checks, not a neural vocoder's quality: the mel (or Kaldi
fbank) energies are mapped back to a linear spectrogram by least squares (clamped at 0)
and the phase is estimated by Griffin-Lim, from a fixed random start so the output is
repeatable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tokquant.audio._torchaudio import torchaudio
from tokquant.audio.frontend import mel_banks
from tokquant.errors import InputError
from tokquant.tokenizer.config import FrontendConfig

#: Kaldi's pre-emphasis coefficient, undone after Griffin-Lim for fbank.
_PREEMPH = 0.97
#: Default :func:`match_mel` strength: the log-mean of the vocoder's band energies and the
#: features'. On unseen voices it raised every score of both demo vocoders (README).
MEL_MATCH = 0.5
#: Frames per block in :func:`match_mel` (30 s at 100 frames/s): bounded memory.
MATCH_FRAMES = 3000


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
    frames = spec.shape[1]
    # Griffin-Lim's centred STFT mirrors half a window at each end, which needs more
    # than half a window of signal: a short input is decoded with its last frame
    # repeated, then cut back to its own (T - 1) x hop samples.
    needed = n_fft // (2 * c.hop_length) + 2
    if frames < needed:
        spec = torch.cat([spec, spec[:, -1:].expand(-1, needed - frames)], dim=1)
    gl = torchaudio()[1].GriffinLim(
        n_fft=n_fft, win_length=c.win_length, hop_length=c.hop_length, power=c.power, n_iter=n_iter
    )
    torch.manual_seed(0)  # Griffin-Lim starts from random phase: make it repeatable
    wave = gl(spec)[: (frames - 1) * c.hop_length]
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


@torch.no_grad()
def match_mel(
    config: FrontendConfig,
    wave: torch.Tensor,
    features: np.ndarray | torch.Tensor,
    strength: float = MEL_MATCH,
    block_frames: int = MATCH_FRAMES,
) -> torch.Tensor:
    """``wave`` (aligned with the input: frame ``t`` centred on ``first_centre + t * hop``)
    with each frame's mel-band energies moved ``strength`` of the way, in log, toward the
    log-mel ``features`` ``[T, n_mels]`` say (0: unchanged, 1: equal).

    Why: a vocoder trained on a few voices misjudges band energies on others, while the
    tokens carry them; one STFT, a per-bin gain (each band's energy ratio spread over its
    bins by the filterbank; bins outside every band take their neighbour's) and an
    inverse STFT keep the vocoder's phase and fine structure. Energies are compared above
    the front end's log floor, as the features hold them. Long inputs go in blocks of
    ``block_frames`` frames with a margin wider than a window, so they match as they
    would whole (to float rounding)."""
    c = config
    if c.kind != "logmel":
        raise InputError(f"the mel match needs a logmel front end, this checkpoint has {c.kind}")
    target = torch.as_tensor(np.asarray(features, dtype=np.float32))
    wave = torch.as_tensor(wave, dtype=torch.float32)
    centre, hop, total = c.first_centre, c.hop_length, target.shape[0]
    if strength == 0 or total == 0 or wave.shape[0] - centre <= c.n_fft // 2:
        return wave
    banks = mel_banks(c)  # [n_freq, n_mels]
    nearest = _nearest_covered(banks)
    window = torch.hann_window(c.win_length)
    stft = dict(n_fft=c.n_fft, hop_length=hop, win_length=c.win_length, window=window)
    margin = c.n_fft // hop + 2
    pieces = [wave[:centre]]
    for t0 in range(0, total, block_frames):
        t1 = min(total, t0 + block_frames)
        a, b = max(0, t0 - margin), min(total, t1 + margin)
        start = centre + a * hop
        stop = wave.shape[0] if b == total else min(wave.shape[0], centre + b * hop + c.n_fft)
        block = wave[start:stop]  # longer than half a window: the whole is, or a margin is
        matched = _match_block(c, block, target[a:b], banks, nearest, stft, strength)
        keep_stop = wave.shape[0] if t1 == total else centre + t1 * hop
        pieces.append(matched[centre + t0 * hop - start : keep_stop - start])
    return torch.cat(pieces)


def _nearest_covered(banks: torch.Tensor) -> torch.Tensor:
    """For each bin, the nearest bin a filter covers: bins outside every band (DC,
    Nyquist, past ``f_max``) take their neighbour's gain, so the gain has no step."""
    covered = (banks.sum(1) > 0).nonzero().flatten()
    bins = torch.arange(banks.shape[0])
    return covered[(bins[:, None] - covered[None, :]).abs().argmin(1)]


def _match_block(
    c: FrontendConfig,
    wave: torch.Tensor,
    target: torch.Tensor,
    banks: torch.Tensor,
    nearest: torch.Tensor,
    stft: dict[str, Any],
    strength: float,
) -> torch.Tensor:
    """One block: its STFT frame ``j`` is centred on its sample ``j * hop``."""
    spec = torch.stft(wave, **stft, center=True, return_complex=True)  # [n_freq, N]
    n = min(spec.shape[1], target.shape[0])
    power = spec[:, :n].abs().pow(c.power).T  # [n, n_freq]
    measured = (power @ banks).clamp(min=c.log_floor).log()
    ratio = (target[:n] - measured).clamp(-9.0, 9.0).exp()  # [n, n_mels], a factor of e^9 at most
    gain = (ratio @ banks.T) / banks.sum(1).clamp(min=1e-12)  # [n, n_freq]
    spec[:, :n] = spec[:, :n] * gain[:, nearest].T.pow(strength / c.power)
    return torch.istft(spec, **stft, center=True, length=wave.shape[0])
