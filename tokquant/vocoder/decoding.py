"""Decoding features to audio with a trained decoder: which decoder may decode which
tokens, and long inputs in chunks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tokquant.audio.vocoder import MEL_MATCH, match_mel
from tokquant.errors import InputError
from tokquant.vocoder.model import Vocoder

if TYPE_CHECKING:
    from tokquant.vocoder.pretrained import PretrainedVocoder

#: Frames per chunk when decoding long inputs (30 s at 100 frames/s).
CHUNK_FRAMES = 3000


def frame_offset(tok: Any, vocoder: Any = None) -> int:
    """Silence a decoded waveform starts with, so that its sample ``n`` is the encoded
    audio's ``n``: a train-vocoder decoder (and Griffin-Lim) starts at frame 0's centre;
    a pretrained one reproduces its own framing's audio, from sample 0."""
    if getattr(vocoder, "aligned_to_input", False):
        return 0
    return tok.config.frontend.first_centre


def open_vocoder(vocoder: Any, tok: Any) -> Any:
    """``vocoder`` checked to be made for ``tok``, on ``tok``'s device. A file from
    train-vocoder (a path, or a loaded :class:`~tokquant.formats.vocoder.VocoderFile`)
    must carry ``tok``'s checkpoint id, sample rate, hop and feature size; a Vocos or
    BigVGAN model (a folder, a Hub id, or a loaded
    :class:`~tokquant.vocoder.pretrained.PretrainedVocoder`) needs ``tok``'s front end to
    compute its mel."""
    from tokquant.formats.vocoder import VocoderFile, load_vocoder
    from tokquant.vocoder.pretrained import PretrainedVocoder, check_frontend, load_pretrained

    if isinstance(vocoder, PretrainedVocoder) or not (
        isinstance(vocoder, VocoderFile) or Path(vocoder).is_file()
    ):
        net = vocoder if isinstance(vocoder, PretrainedVocoder) else load_pretrained(vocoder)
        check_frontend(net, tok.config.frontend)
        return net.to(tok.mean.device)
    loaded = vocoder if isinstance(vocoder, VocoderFile) else load_vocoder(Path(vocoder))
    config, front = loaded.vocoder.config, tok.config.frontend
    where = loaded.path.name
    if tok.checkpoint_id is not None and loaded.checkpoint_id != tok.checkpoint_id:
        raise InputError(
            f"{where}: a vocoder for another tokenizer (checkpoint "
            f"{loaded.checkpoint_id[:12]}, not {tok.checkpoint_id[:12]}); train "
            f"one for this checkpoint with train-vocoder"
        )
    if (config.sample_rate, config.hop) != (front.sample_rate, front.hop_length):
        raise InputError(
            f"{where}: decodes {config.sample_rate} Hz audio, {config.hop} "
            f"samples per frame; this tokenizer's frames are "
            f"{front.hop_length} samples at {front.sample_rate} Hz"
        )
    if config.feature_dim != int(tok.mean.numel()):
        raise InputError(
            f"{where}: reads {config.feature_dim} features per frame; this "
            f"tokenizer decodes {int(tok.mean.numel())}"
        )
    net = loaded.vocoder.to(tok.mean.device)
    net.file_id = loaded.id  # what decoded outputs record as their decoder
    return net


def decode_features(
    vocoder: Vocoder | PretrainedVocoder,
    tok: Any,
    features: np.ndarray | torch.Tensor,
    mel_match: float | None = None,
) -> torch.Tensor:
    """Audio of ``tok``'s decoded ``features`` through ``vocoder``, its sample ``n`` the
    encoded audio's ``n``. For a log-mel tokenizer each frame's band energies are then
    moved ``mel_match`` of the way toward the features' (:func:`~tokquant.audio.vocoder.
    match_mel`; 0: the vocoder's output as it is; None: the vocoder's own default,
    :func:`default_mel_match`). Audio that is not finite is refused, never returned."""
    wave = vocode(vocoder, features, frame_offset(tok, vocoder))
    strength = default_mel_match(vocoder) if mel_match is None else mel_match
    front = tok.config.frontend
    if strength and front.kind == "logmel":
        wave = match_mel(front, wave, features, strength)
    if not bool(torch.isfinite(wave).all()):
        raise InputError(
            f"{getattr(vocoder, 'name', 'the vocoder')}: decoded audio holds NaN or Inf "
            f"(its weights or normalisation are broken); nothing written"
        )
    return wave


def default_mel_match(vocoder: Any) -> float:
    """The mel match a decoder gets unless told: :data:`MEL_MATCH` for a decoder
    trained here, where it was measured (README); 0 for a Vocos or BigVGAN model, whose
    published weights it was never measured on, so their own output is what you hear."""
    return 0.0 if getattr(vocoder, "aligned_to_input", False) else MEL_MATCH


def check_mel_match(value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(f"`mel_match` must be a number in [0, 1], found {value!r}")


@torch.no_grad()
def vocode(
    vocoder: Vocoder | PretrainedVocoder,
    features: np.ndarray | torch.Tensor,
    offset: int,
    chunk_frames: int = CHUNK_FRAMES,
) -> torch.Tensor:
    """Audio ``[offset + T * hop]`` of features ``[T, F]``, decoded in chunks of
    ``chunk_frames`` frames. Each chunk is decoded with :attr:`Vocoder.receptive_frames`
    frames of context on both sides and keeps its own frames' samples only, so a long
    input decodes as it would whole (to float rounding) in bounded memory."""
    feats = torch.as_tensor(np.asarray(features, dtype=np.float32))
    device = next(vocoder.parameters()).device
    total, hop, context = feats.shape[0], vocoder.config.hop, vocoder.receptive_frames
    pieces = [torch.zeros(offset)]
    for t0 in range(0, total, chunk_frames):
        t1 = min(total, t0 + chunk_frames)
        a, b = max(0, t0 - context), min(total, t1 + context)
        wave = vocoder(feats[None, a:b].to(device))[0].cpu()
        pieces.append(wave[(t0 - a) * hop : (t1 - a) * hop])
    return torch.cat(pieces)
