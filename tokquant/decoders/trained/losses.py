"""The decoder's training losses: multi-resolution STFT and mel L1 (the reconstruction
terms of Parallel WaveGAN, HiFi-GAN and Vocos), and, as an option for long GPU runs,
least-squares adversarial and feature-matching terms from multi-period and
multi-resolution discriminators."""

from __future__ import annotations

import torch
from torch import nn

from tokquant.audio._torchaudio import torchaudio

#: (n_fft, hop) pairs of the multi-resolution STFT loss, scaled to the sample rate.
RESOLUTIONS_24K = ((512, 128), (1024, 256), (2048, 512))


def _magnitude(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)
    return (spec.real**2 + spec.imag**2).clamp(min=1e-10).sqrt()


class SpectralLoss(nn.Module):
    """``stft``: spectral convergence plus log-magnitude L1 at three resolutions;
    ``mel``: L1 of log mel magnitudes (its weight in :meth:`forward`)."""

    def __init__(self, sample_rate: int, n_mels: int = 80, mel_weight: float = 1.0) -> None:
        super().__init__()

        scale = sample_rate / 24_000
        self.resolutions = [
            (_even(n * scale), max(1, round(h * scale))) for n, h in RESOLUTIONS_24K
        ]
        self.mel_fft = self.resolutions[1][0]
        banks = torchaudio()[0].melscale_fbanks(
            self.mel_fft // 2 + 1,
            0.0,
            sample_rate / 2,
            n_mels,
            sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("banks", banks, persistent=False)
        self.mel_weight = mel_weight

    def forward(self, decoded: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        stft = decoded.new_zeros(())
        for n_fft, hop in self.resolutions:
            est, ref = _magnitude(decoded, n_fft, hop), _magnitude(target, n_fft, hop)
            convergence = torch.linalg.norm(ref - est) / torch.linalg.norm(ref).clamp(min=1e-7)
            stft = stft + convergence + (ref.log() - est.log()).abs().mean()
        stft = stft / len(self.resolutions)
        n_fft, hop = self.resolutions[1]
        mel_est = (_magnitude(decoded, n_fft, hop).transpose(-1, -2) @ self.banks).clamp(min=1e-5)
        mel_ref = (_magnitude(target, n_fft, hop).transpose(-1, -2) @ self.banks).clamp(min=1e-5)
        mel = (mel_est.log() - mel_ref.log()).abs().mean()
        return {"loss": stft + self.mel_weight * mel, "stft": stft, "mel": mel}


def _even(n: float) -> int:
    return max(16, 2 * round(n / 2))


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's: the waveform folded into ``period`` columns, 2-D convolutions."""

    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        chans = [1, 32, 128, 256, 512]
        self.convs = nn.ModuleList(
            nn.utils.parametrizations.weight_norm(
                nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0))
            )
            for i in range(4)
        )
        self.post = nn.utils.parametrizations.weight_norm(nn.Conv2d(512, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = (-x.shape[-1]) % self.period
        x = nn.functional.pad(x, (0, pad), mode="reflect")[:, None]
        x = x.reshape(x.shape[0], 1, -1, self.period)
        maps = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            maps.append(x)
        return self.post(x).flatten(1), maps


class ResolutionDiscriminator(nn.Module):
    """UnivNet's: 2-D convolutions over one resolution's magnitude spectrogram."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList(
            [
                wn(nn.Conv2d(1, 32, (3, 9), padding=(1, 4))),
                wn(nn.Conv2d(32, 32, (3, 9), (1, 2), padding=(1, 4))),
                wn(nn.Conv2d(32, 32, (3, 9), (1, 2), padding=(1, 4))),
                wn(nn.Conv2d(32, 32, (3, 3), padding=(1, 1))),
            ]
        )
        self.post = wn(nn.Conv2d(32, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _magnitude(x, self.n_fft, self.hop)[:, None]
        maps = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
            maps.append(x)
        return self.post(x).flatten(1), maps


class Discriminators(nn.Module):
    """Multi-period (2, 3, 5, 7, 11) and multi-resolution discriminators."""

    def __init__(self, resolutions: list[tuple[int, int]]) -> None:
        super().__init__()
        self.items = nn.ModuleList(
            [PeriodDiscriminator(p) for p in (2, 3, 5, 7, 11)]
            + [ResolutionDiscriminator(n, h) for n, h in resolutions]
        )

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.items]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real scores towards 1, decoded towards 0."""
    return sum(
        ((1 - r) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake, strict=True)
    )


def generator_loss(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """``(adversarial, feature matching)``: decoded scores towards 1, and the L1
    distance of every discriminator layer's maps to the real audio's."""
    adversarial = sum(((1 - f) ** 2).mean() for f, _ in fake)
    matching = sum(
        (rm.detach() - fm).abs().mean()
        for (_, rmaps), (_, fmaps) in zip(real, fake, strict=True)
        for rm, fm in zip(rmaps, fmaps, strict=True)
    )
    return adversarial, matching
