"""What a checkpoint holds: input normalisation, projections and a quantizer.

``features [T, F] -> normalise -> project in -> quantizer -> project out -> denormalise``.
The quantizer math knows nothing of this wrapper; this wrapper knows nothing of files.

It also holds the rule that makes codes independent of batching (:meth:`Tokenizer.
encode_batch`): every chunk is zero-padded to a multiple of :data:`PAD_FRAMES` frames, so
every matrix product sees at least that many rows. BLAS kernels change their summation
order for a handful of rows (seen below 8 here), but above that a row's result does not
depend on what else is in the batch, so an input gives the same codes alone, batched or
in chunks. Rows go through the model in blocks of :data:`ENCODE_BLOCK_FRAMES` (a multiple
of the pad), which bounds activation memory whatever the projection's width.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tokquant.audio import frontend as audio_frontend
from tokquant.audio.frontend import reader_features
from tokquant.audio.waveform import WaveformReader, as_samples, check_channel, check_rate
from tokquant.decoders import decode, open_decoder
from tokquant.decoders.base import check_mel_match
from tokquant.quantizers import Quantizer, QuantizerOutput, build_quantizer
from tokquant.tokenizer import DEFAULT_BATCH_FRAMES
from tokquant.tokenizer.config import TokenizerConfig

#: Every chunk is padded to a multiple of this many frames before the model sees it.
PAD_FRAMES = 64
#: Rows per pass through projections and quantizer (memory: this many rows' activations).
ENCODE_BLOCK_FRAMES = 64 * PAD_FRAMES


def _projection(kind: str, d_in: int, d_out: int, hidden: int, depth: int = 1) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


class Tokenizer(nn.Module):
    """Features ``[..., feature_dim]`` to codes ``[..., G]`` and back.

    Args:
        config: a validated :class:`TokenizerConfig`; ``config.features.dim`` must be set.
    """

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        feature_dim = config.features.dim
        if feature_dim is None:
            raise ValueError("config.features.dim must be set before building a Tokenizer")
        self.config = config
        params = config.quantizer.for_features(feature_dim)
        inner = params.input_dim
        kind = config.projection.kind
        if kind == "none" and inner != feature_dim:
            raise ValueError(
                f"projection.kind 'none' needs the quantizer dim ({inner}) to equal "
                f"features.dim ({feature_dim})"
            )
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        hidden = config.projection.hidden
        depth = config.projection.depth
        self.project_in = _projection(kind, feature_dim, inner, hidden, depth)
        self.quantizer: Quantizer = build_quantizer(params)
        self.project_out = _projection(kind, inner, feature_dim, hidden, depth)
        #: The id and file of the checkpoint it was loaded from (:func:`tokquant.load`).
        self.checkpoint_id: str | None = None
        self.checkpoint_path: Path | None = None
        self._frontend: Any = None  # built on first use, on this tokenizer's device

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def column_cardinalities(self) -> list[int]:
        return self.quantizer.column_cardinalities

    @property
    def column_names(self) -> list[str]:
        return self.quantizer.column_names

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """Reconstruction in the normalised feature space, and the quantizer's output."""
        out = self.quantizer(self.project_in(self.normalize(features)))
        return self.project_out(out.quantized), out

    @torch.no_grad()
    def encode(
        self, features: torch.Tensor, *, levels: int | None = None, beam: int | None = None
    ) -> torch.Tensor:
        """``[..., F]`` float features -> ``[..., G]`` int64 codes.

        ``levels`` keeps the first levels only and ``beam`` searches with a beam, for
        quantizers that support them (RVQ; None: the beam its codebooks were fitted for).
        """
        z = self.project_in(self.normalize(features.float()))
        if self.quantizer.supports_levels:
            return self.quantizer.encode(z, num_levels=levels, beam=beam)  # type: ignore[call-arg]
        if levels is None and beam in (None, 1):  # a beam of one is every family's search
            return self.quantizer.encode(z)
        raise ValueError("levels and beam apply to RVQ tokenizers only")

    @torch.no_grad()
    def encode_batch(
        self,
        chunks: Sequence[torch.Tensor],
        *,
        levels: int | None = None,
        beam: int | None = None,
    ) -> list[torch.Tensor]:
        """Codes ``[T_i, G]`` of each ``[T_i, F]`` chunk, computed together; each equal,
        bit for bit, to that chunk's codes alone (see the module docstring)."""
        if not chunks:
            return []
        padded = [F.pad(c, (0, 0, 0, -c.shape[0] % PAD_FRAMES)) for c in chunks]
        x = torch.cat(padded).to(self.mean.device, torch.float32)
        codes = torch.cat(
            [
                self.encode(x[i : i + ENCODE_BLOCK_FRAMES], levels=levels, beam=beam)
                for i in range(0, x.shape[0], ENCODE_BLOCK_FRAMES)
            ]
        )
        out, start = [], 0
        for chunk, p in zip(chunks, padded, strict=True):
            out.append(codes[start : start + chunk.shape[0]])
            start += p.shape[0]
        return out

    # Waveforms in, codes out ----------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def sample_rate(self) -> int | None:
        """The rate audio is resampled to (None: the tokenizer reads feature files)."""
        return None if self.config.frontend.kind == "none" else self.config.frontend.sample_rate

    @property
    def frame_rate(self) -> float | None:
        return self.config.features.frame_rate

    def frontend(self) -> Any:
        """The audio front end this tokenizer owns (log-mel, fbank, MFCC, or an SSL model
        on this tokenizer's device), built on first use: after ``.to(device)`` the next
        call builds it on the new device. Build it in one thread before others use it
        (the CLI's jobs do, before their loader threads start)."""
        if self.sample_rate is None:
            raise ValueError("this tokenizer reads features, not audio (frontend.kind: none)")
        built = self._frontend
        if built is None or getattr(built, "device", self.device) != self.device:
            self._frontend = built = audio_frontend.build_frontend(
                self.config.frontend, self.device
            )
        return built

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles (a DataLoader worker's copy) leave the front end behind;
        each builds its own on first use."""
        state = self.__dict__.copy()
        state["_frontend"] = None
        return state

    def audio_features(
        self, wave: Any, sample_rate: int, *, channel: int | str | None = None, what: str = "wave"
    ) -> torch.Tensor:
        """``[T, F]`` float32 features of a waveform ``[N]``, ``[C, N]`` or ``[N, C]``
        (float or integer PCM, any rate), computed as ``tokquant encode`` computes a
        file's. ``channel``: None (mono, or two channels averaged), ``"mix"`` (any
        number averaged) or a channel index."""
        samples = as_samples(wave, what=what)
        picked = check_channel(channel, samples.shape[1], what=what)
        reader = WaveformReader(samples, check_rate(sample_rate), what)
        frontend = self.frontend()
        chunks = list(
            reader_features(reader, frontend, channel=None if picked == "mix" else picked)
        )
        return torch.from_numpy(np.concatenate(chunks))

    def encode_audio(
        self,
        wave: Any,
        sample_rate: int | Sequence[int],
        *,
        channel: int | str | None = None,
        levels: int | None = None,
        beam: int | None = None,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
        batched: bool = False,
    ) -> Any:
        """Codes ``[T, G]`` int64 (on this tokenizer's device) of a waveform: a tensor or
        array ``[N]`` or ``[C, N]`` (channels averaged unless ``channel`` picks one), any
        float or integer PCM dtype, any rate (resampled as the CLI resamples files). A list
        of waveforms (``sample_rate`` one rate, or one per waveform) gives a list of codes,
        computed in batches of about ``batch_frames`` frames; each equals, bit for bit,
        that waveform encoded alone and the token file ``tokquant encode`` writes for the
        same audio. ``batched=True`` reads a ``[B, N]`` tensor or array as B mono waves
        (as ``default_collate`` stacks equal-length clips) and gives a list; without it,
        an input of more than two rows is refused rather than averaged as channels
        (``channel="mix"`` averages any number). Bad input raises one ``ValueError``
        naming the problem.

        Example:
            >>> tok = tokquant.load("model.safetensors")
            >>> codes = tok.encode_audio(wave, 44100)        # [T, G]
            >>> many = tok.encode_audio([w1, w2, w3], 16000)  # batched, same codes
        """
        if batched:
            if isinstance(wave, (list, tuple)) or getattr(wave, "ndim", 0) != 2:
                raise ValueError(
                    f"batched=True takes one [B, N] tensor or array. Found "
                    f"{type(wave).__name__} of shape "
                    f"{list(getattr(wave, 'shape', []))}"
                )
            wave = list(wave)
        single = not isinstance(wave, (list, tuple))
        waves = [wave] if single else list(wave)
        rates = (
            list(sample_rate)
            if isinstance(sample_rate, (list, tuple))
            else [sample_rate] * len(waves)
        )
        if len(rates) != len(waves):
            raise ValueError(
                f"sample_rate must be one rate or one per wave. Found {len(rates)} "
                f"rates for {len(waves)} waves"
            )
        codes: list[torch.Tensor] = []
        batch: list[torch.Tensor] = []
        held = 0
        for i, (w, rate) in enumerate(zip(waves, rates, strict=True)):
            what = "wave" if single else f"wave {i}"
            batch.append(self.audio_features(w, rate, channel=channel, what=what))
            held += batch[-1].shape[0]
            if held >= batch_frames:
                codes += self.encode_batch(batch, levels=levels, beam=beam)
                batch, held = [], 0
        codes += self.encode_batch(batch, levels=levels, beam=beam) if batch else []
        return codes[0] if single else codes

    def decode_audio(
        self, codes: Any, *, vocoder: Any = None, n_iter: int = 32, mel_match: float | None = None
    ) -> torch.Tensor | list[torch.Tensor]:
        """A waveform ``[N]`` float32 at :attr:`sample_rate` from codes ``[T, G]`` (a list
        of codes gives a list of waveforms). With ``vocoder`` (a file from
        ``tokquant train-vocoder`` for this checkpoint, or one loaded once with
        :func:`tokquant.decoders.trained.file.load_vocoder`) any audio front end decodes, long
        inputs in chunks; a Vocos or BigVGAN folder or Hub id (or one loaded once with
        :func:`tokquant.decoders.pretrained.networks.load_pretrained`) decodes a tokenizer on that
        vocoder's mel. A log-mel tokenizer's vocoder output then has each frame's band
        energies moved ``mel_match`` of the way toward the tokens' (0: off; None: 0.5 for a
        train-vocoder file, 0 for Vocos/BigVGAN; see :func:`tokquant.decoders.mel.match_mel`). Without a vocoder, Griffin-Lim (an
        approximate inversion for listening checks) decodes log-mel and fbank features.
        Sample ``n`` of the result lines up with sample ``n`` of the encoded audio."""
        kind = self.config.frontend.kind
        if kind == "none":
            raise ValueError(
                "decode_audio needs an audio front end: this tokenizer reads "
                "feature files (decode gives its features)"
            )
        check_mel_match(mel_match)
        decoder = open_decoder(vocoder, self, n_iter=n_iter)
        single = not isinstance(codes, (list, tuple))
        waves = []
        for item in [codes] if single else list(codes):
            features = self.decode(self._checked_codes(item)).float().cpu().numpy()
            waves.append(decode(decoder, self, features, mel_match))
        return waves[0] if single else waves

    def _checked_codes(self, codes: Any) -> torch.Tensor:
        if isinstance(codes, torch.Tensor) and (codes.is_meta or codes.is_sparse):
            what = (
                "a meta tensor: it has a shape but holds no codes"
                if codes.is_meta
                else ("sparse: pass codes.to_dense()")
            )
            raise ValueError(f"codes is {what}")
        codes = torch.as_tensor(codes, device=self.device)
        if codes.ndim != 2 or codes.dtype.is_floating_point:
            raise ValueError(
                f"codes must be integer [T, G]. Found {codes.dtype} {list(codes.shape)}"
            )
        if codes.shape[0] == 0:
            raise ValueError("codes are empty ([0, G]): there is no frame to decode")
        return codes

    def columns(self, levels: int | None = None) -> tuple[list[str], list[int]]:
        """Names and cardinalities of the code columns (the first ``levels`` for RVQ)."""
        names, cards = self.column_names, self.column_cardinalities
        return (names, cards) if levels is None else (names[:levels], cards[:levels])

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[..., G]`` codes -> ``[..., F]`` features in the original (denormalised) units."""
        return self.project_out(self.quantizer.decode(codes)) * self.std + self.mean
