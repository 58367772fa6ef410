"""A Vocos-style waveform decoder: features ``[T, F]`` -> audio ``[T * hop]``.

A ConvNeXt backbone over frames, then a head that predicts each frame's STFT magnitude
and phase and inverts them (Siuzdak, "Vocos", 2023): no upsampling layers, so it is fast
on a CPU and its frame rate is the tokenizer's by construction (``hop`` samples per
frame). The inverse STFT uses "same" padding, so ``T`` frames give exactly ``T * hop``
samples and frame ``t`` covers samples from ``t * hop``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tokquant.checks import check_setting, int_in, optional


@dataclass
class VocoderConfig:
    """Everything that rebuilds a decoder, stored in its file beside the weights."""

    #: features per frame (the tokenizer's decoded features)
    feature_dim: int
    #: samples per frame, and the rate they are at
    hop: int
    sample_rate: int
    #: ConvNeXt width, hidden width and depth (Vocos' 24 kHz model: 512, 1536, 8)
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    #: inverse STFT size (None: 4 x hop)
    n_fft: int | None = None
    kernel: int = 7

    @property
    def fft_size(self) -> int:
        return self.n_fft or 4 * self.hop

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocoderConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown vocoder config keys: {', '.join(unknown)}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data)
        required = [n for n in missing if n in ("feature_dim", "hop", "sample_rate")]
        if required:
            raise ValueError(f"vocoder config lacks {', '.join(required)}")
        config = cls(**data)
        config.check()
        return config

    def check(self) -> None:
        """Every size within :data:`LIMITS`, and a geometry that gives ``T * hop``
        samples for ``T`` frames: a config from a file is checked before anything is
        built (a million layers would take minutes and gigabytes even on the meta device)."""
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            check = optional(int_in(lo, hi)) if name == "n_fft" else int_in(lo, hi)
            check_setting(name, value, check)
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel: must be odd (a centred convolution), found {self.kernel}")
        if self.fft_size < self.hop or (self.fft_size - self.hop) % 2:
            raise ValueError(
                f"n_fft: must be at least hop ({self.hop}) and differ from it by an even "
                f"number, so that T frames give T x hop samples; found {self.fft_size}"
            )


#: The bounds of each size in a vocoder config (far above any published decoder:
#: Vocos' largest is 512 wide, 1536 hidden, 8 layers).
LIMITS: dict[str, tuple[int, int]] = {
    "feature_dim": (1, 4096),
    "hop": (1, 8192),
    "sample_rate": (1000, 768_000),
    "dim": (1, 4096),
    "intermediate": (1, 16384),
    "layers": (1, 64),
    "n_fft": (1, 32768),
    "kernel": (1, 63),
}


class ConvNeXtBlock(nn.Module):
    """Depthwise convolution over time, then a pointwise MLP, scaled and added back."""

    def __init__(self, dim: int, intermediate: int, kernel: int, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Per frame, ``n_fft / 2 + 1`` log-magnitudes and phases, inverted with "same"
    padding (Vocos' head): ``T`` frames -> ``T * hop`` samples."""

    def __init__(self, dim: int, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, T * hop]
        mag, phase = self.out(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=1)
        spec = torch.exp(mag).clamp(max=1e2) * torch.exp(1j * phase)
        return self._istft(spec)

    def _istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Overlap-add of windowed frames, divided by the summed squared window; the
        ``(n_fft - hop) / 2`` samples at each end are cut ("same" padding)."""
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[:, None]
        count = spec.shape[-1]
        size = (count - 1) * self.hop + self.n_fft
        fold = dict(output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))
        wave = nn.functional.fold(frames, **fold)[:, 0, 0]
        norm = nn.functional.fold((self.window**2)[None, :, None].expand(1, -1, count), **fold)[
            0, 0, 0
        ]
        pad = (self.n_fft - self.hop) // 2
        return wave[:, pad : size - pad] / norm[pad : size - pad].clamp(min=1e-11)


class Vocoder(nn.Module):
    """Features ``[B, T, F]`` (normalised as the decoder's ``mean`` / ``std`` say) ->
    audio ``[B, T * hop]``."""

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        c = self.config = config
        self.register_buffer("mean", torch.zeros(c.feature_dim))
        self.register_buffer("std", torch.ones(c.feature_dim))
        self.embed = nn.Conv1d(c.feature_dim, c.dim, c.kernel, padding=c.kernel // 2)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        scale = 1.0 / c.layers
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(c.dim, c.intermediate, c.kernel, scale) for _ in range(c.layers)
        )
        self.final_norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.head = ISTFTHead(c.dim, c.fft_size, c.hop)
        self.apply(_init)

    @property
    def receptive_frames(self) -> int:
        """Frames on each side that reach a frame's samples (the embedding's and each
        block's kernel, then the inverse STFT's window): chunks overlap by this much."""
        c = self.config
        return (c.kernel // 2) * (c.layers + 1) + c.fft_size // c.hop // 2 + 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = ((features - self.mean) / self.std).transpose(1, 2)
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.head(x)


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv1d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
