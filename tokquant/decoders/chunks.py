"""Decoding with a network, in chunks: where its audio starts, and long inputs in pieces
whose context covers the network's reach, so a chunked decode equals a whole one."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: Frames per chunk when decoding long inputs (30 s at 100 frames/s).
CHUNK_FRAMES = 3000


def frame_offset(tok: Any, vocoder: Any = None) -> int:
    """Silence a decoded waveform starts with, so that its sample ``n`` is the encoded
    audio's ``n``: a train-vocoder decoder (and Griffin-Lim) starts at frame 0's centre;
    a pretrained one reproduces its own framing's audio, from sample 0."""
    if getattr(vocoder, "aligned_to_input", False):
        return 0
    return tok.config.frontend.first_centre


@torch.no_grad()
def vocode(
    vocoder: Any,
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
