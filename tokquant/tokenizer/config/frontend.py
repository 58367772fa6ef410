"""The ``frontend:`` section of a tokenizer config: audio to features (log-mel, Kaldi
fbank, MFCC on torchaudio, or an SSL model's layers), and how frames map to samples."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tokquant.audio.codec_models import complete_section
from tokquant.audio.ssl_models import HOP, RECEPTIVE_FIELD, SAMPLE_RATE, ssl_model
from tokquant.checks import (
    check_setting,
    format_bytes,
    int_in,
    machine_memory,
    number,
    one_of,
    shown,
)
from tokquant.choices import CODECS, FRONTENDS
from tokquant.errors import ConfigError, FormatError, InputError


def stored(section: Any) -> dict[str, Any]:
    """A config section as a checkpoint stores it: a field marked ``later`` (added after
    format version 1) only away from its default, so checkpoints that do not use it keep
    their bytes and ids."""
    return {
        f.name: getattr(section, f.name)
        for f in dataclasses.fields(section)
        if not (f.metadata.get("later") and getattr(section, f.name) == f.default)
    }


MEL_SCALES = ("htk", "slaney")
SSL_MERGES = ("mean", "concat")
SSL_PRECISIONS = ("float32", "float16", "bfloat16")
#: Fields only an SSL front end reads; other kinds leave them out of checkpoints.
#: A codec's framing is its own: what log-mel settings a codec section never reads.
CODEC_UNREAD = ("layers", "layer_merge", "precision", "f_min", "f_max", "log_floor")
SSL_FIELDS = (
    "model",
    "layers",
    "layer_merge",
    "weights",
    "weights_sha256",
    "window_seconds",
    "context_seconds",
    "precision",
)


@dataclass
class FrontendConfig:
    """Audio to features, on torchaudio. ``kind: none`` means inputs are feature files.

    A signal of ``L`` samples at ``sample_rate``, with ``p = reflect_pad`` samples mirrored
    onto each end, gives ``1 + (L + 2p - frame_length) // hop_length`` frames (0 when that
    is below one, or ``L <= p``), frame ``t`` covering samples
    ``[t * hop_length - p, t * hop_length - p + frame_length)``. By default ``p = 0``: no
    centring, each frame computed from samples of the signal alone.
    """

    kind: str = "none"
    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    log_floor: float = 1e-5
    n_mfcc: int = 13
    # A pretrained vocoder's own mel (Vocos, BigVGAN: tokquant.decoders.pretrained.networks), which
    # a tokenizer must reproduce exactly for that vocoder to decode its tokens. Stored
    # only away from their defaults, so older checkpoints keep their bytes and ids.
    #: 2: mel of power |X|^2; 1: of magnitude |X| (Vocos, BigVGAN, HiFi-GAN)
    power: float = field(default=2.0, metadata={"later": True})
    #: added to |X|^2 before the power is taken (BigVGAN: 1e-9)
    power_eps: float = field(default=0.0, metadata={"later": True})
    #: mel scale (htk | slaney) and filter normalisation (null | slaney, librosa's default)
    mel_scale: str = field(default="htk", metadata={"later": True})
    mel_norm: str | None = field(default=None, metadata={"later": True})
    #: samples mirrored onto each end before framing (torch.stft's center=True is
    #: n_fft // 2, Vocos'; BigVGAN's is (n_fft - hop) // 2)
    reflect_pad: int = field(default=0, metadata={"later": True})
    # kind: ssl (tokquant.audio.ssl). The model fixes the rate and the 400/320 framing.
    model: str = ""
    layers: list[int] = field(default_factory=lambda: [6])
    layer_merge: str = "mean"
    weights: str | None = None
    weights_sha256: str | None = None
    window_seconds: float = 30.0
    context_seconds: float = 1.0
    precision: str = "float32"
    # kind: codec (tokquant.audio.codec): ``model`` is the codec (encodec, dac),
    # ``weights`` its folder, ``weights_sha256`` its tensors'; the folder fixes the rate,
    # the hop and this, the width of its latents.
    latent_dim: int | None = field(default=None, metadata={"later": True})

    @property
    def feature_dim(self) -> int:
        if self.kind == "codec":
            return int(self.latent_dim or 0)
        if self.kind == "ssl":
            width = ssl_model(self.model).embed_dim
            return width * (len(self.layers) if self.layer_merge == "concat" else 1)
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames of ``num_samples`` samples at :attr:`sample_rate` (an SSL model's
        framing too, once validated: 400-sample field, 320-sample hop; a codec's: whole
        hops, the last one padded)."""
        if self.kind == "codec":
            return -(-num_samples // self.hop_length) if num_samples > 0 else 0
        return (
            0
            if num_samples < self.min_samples
            else 1 + (num_samples + 2 * self.reflect_pad - self.frame_length) // self.hop_length
        )

    @property
    def frame_length(self) -> int:
        """Samples one frame reads: ``n_fft`` for log-mel and MFCC (torch frames ``n_fft``
        samples, the ``win_length`` window centred in them), ``win_length`` for fbank
        (Kaldi pads each frame's FFT itself) and SSL models."""
        return self.n_fft if self.kind in ("logmel", "mfcc") else self.win_length

    @property
    def min_samples(self) -> int:
        """The shortest signal with a frame (a mirrored end needs ``reflect_pad + 1``)."""
        if self.kind == "codec":
            return 1
        return max(self.frame_length - 2 * self.reflect_pad, self.reflect_pad + 1)

    @property
    def first_centre(self) -> int:
        """The sample frame 0 is centred on."""
        return self.frame_length // 2 - self.reflect_pad

    def to_dict(self) -> dict[str, Any]:
        """The fields this kind reads (a log-mel checkpoint holds no SSL keys)."""
        data = stored(self)
        if self.kind == "codec":
            return {k: v for k, v in data.items() if k not in CODEC_UNREAD}
        if self.kind != "ssl":
            data = {k: v for k, v in data.items() if k not in SSL_FIELDS}
        return data

    def validate(self) -> None:
        check_setting("frontend.kind", self.kind, one_of(*FRONTENDS))
        if self.kind == "ssl":
            self._validate_ssl()
        if self.kind == "codec":
            self._validate_codec()
            return
        check_setting("frontend.sample_rate", self.sample_rate, int_in(1000, 384_000))
        check_setting("frontend.n_fft", self.n_fft, int_in(16, 1 << 16))
        check_setting("frontend.win_length", self.win_length, int_in(16, self.n_fft))
        check_setting("frontend.hop_length", self.hop_length, int_in(1, self.win_length))
        check_setting("frontend.n_mels", self.n_mels, int_in(1, self.n_fft // 2 + 1))
        check_setting("frontend.n_mfcc", self.n_mfcc, int_in(1, self.n_mels))
        check_setting("frontend.f_min", self.f_min, number(positive=False))
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not self.f_min < f_max <= nyquist:
            raise ConfigError(
                f"frontend.f_max: must be in (f_min, sample_rate / 2 = {nyquist:g}], found {f_max!r}"
            )
        check_setting("frontend.log_floor", self.log_floor, number(positive=True))
        if self.power not in (1.0, 2.0):
            raise ConfigError(f"frontend.power: must be 1 or 2, found {shown(self.power)}")
        check_setting("frontend.power_eps", self.power_eps, number(positive=False))
        check_setting("frontend.mel_scale", self.mel_scale, one_of(*MEL_SCALES))
        if self.mel_norm not in (None, "slaney"):
            raise ConfigError(
                f"frontend.mel_norm: must be null or slaney, found {shown(self.mel_norm)}"
            )
        check_setting("frontend.reflect_pad", self.reflect_pad, int_in(0, self.frame_length // 2))
        mel_only = ("power", "power_eps", "mel_scale", "mel_norm")
        unread = {"fbank": mel_only, "ssl": (*mel_only, "reflect_pad")}.get(self.kind, ())
        for f in dataclasses.fields(self):
            if f.name in unread and getattr(self, f.name) != f.default:
                raise ConfigError(
                    f"frontend.{f.name}: a {self.kind} front end does not read it "
                    f"(logmel and mfcc do); remove it"
                )

    def _check_window_memory(self, heads: int, frame_rate: float) -> None:
        """Attention over one window holds ``heads x frames^2`` float32 scores: refuse a
        window whose scores alone exceed this machine's memory (``1e308`` seconds would
        otherwise overflow, and an hour would need 1.2 TiB), naming the size."""
        frames = (self.window_seconds + 2 * self.context_seconds) * frame_rate
        need = heads * frames * frames * 4.0
        have = machine_memory()
        if not need <= have:  # inf and nan too
            raise ConfigError(
                f"frontend.window_seconds: windows of {self.window_seconds:g} s (+ context) "
                f"need about {format_bytes(need)} for attention, more than this machine's "
                f"{format_bytes(have)}; the default is 30"
            )

    def _validate_ssl(self) -> None:
        arch = ssl_model(self.model)  # ConfigError naming the known models
        if not isinstance(self.layers, list) or not self.layers:
            raise ConfigError("frontend.layers: must be a non-empty list of layer numbers")
        for layer in self.layers:
            check_setting("frontend.layers", layer, int_in(1, arch.num_layers))
        if len(set(self.layers)) != len(self.layers):
            raise ConfigError(f"frontend.layers: holds a layer twice ({self.layers})")
        check_setting("frontend.layer_merge", self.layer_merge, one_of(*SSL_MERGES))
        check_setting("frontend.precision", self.precision, one_of(*SSL_PRECISIONS))
        check_setting("frontend.window_seconds", self.window_seconds, number(positive=True))
        check_setting("frontend.context_seconds", self.context_seconds, number(positive=False))
        if self.window_seconds * SAMPLE_RATE < RECEPTIVE_FIELD:
            raise ConfigError("frontend.window_seconds: must cover one frame (0.025 s)")
        self._check_window_memory(arch.num_heads, SAMPLE_RATE / HOP)
        # The model fixes its framing: 400-sample receptive field, 320-sample hop, 16 kHz.
        self.sample_rate, self.hop_length = SAMPLE_RATE, HOP
        self.win_length = self.n_fft = RECEPTIVE_FIELD

    def _validate_codec(self) -> None:
        if not self.weights:
            raise ConfigError("frontend.weights: a codec front end needs its folder")
        if self.latent_dim is None:  # written by hand: the folder says the rest
            try:
                complete_section(self)
            except (InputError, FormatError) as exc:
                raise ConfigError(f"frontend.weights: {exc}") from None
        check_setting("frontend.model", self.model, one_of(*CODECS))
        check_setting("frontend.latent_dim", self.latent_dim, int_in(1, 1 << 16))
        check_setting("frontend.sample_rate", self.sample_rate, int_in(1000, 384_000))
        check_setting("frontend.hop_length", self.hop_length, int_in(1, 8192))
        check_setting("frontend.window_seconds", self.window_seconds, number(positive=True))
        check_setting("frontend.context_seconds", self.context_seconds, number(positive=False))
        if self.window_seconds * self.sample_rate < self.hop_length:
            raise ConfigError("frontend.window_seconds: must cover one frame")
