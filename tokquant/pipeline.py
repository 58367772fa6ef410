"""File-level operations the CLI loops over: one input file in, one token file out.

An input is a feature file, or an audio file when the checkpoint has a front end. Audio
is streamed in chunks of whole blocks (see :mod:`tokquant.frontend`), and the tokenizer
pads what it encodes (see :func:`encode_features`), so the codes of a frame never depend
on how much of the file, or of other files, was in memory with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from tokquant.audio import SUFFIXES as AUDIO_SUFFIXES
from tokquant.audio import write_wav
from tokquant.config import TokenizerConfig
from tokquant.errors import InputError
from tokquant.formats.checkpoint import Checkpoint
from tokquant.formats.features import SUFFIXES as FEATURE_SUFFIXES
from tokquant.formats.features import read_features, write_features
from tokquant.formats.tokens import TokenFile, read_tokens, write_tokens
from tokquant.frontend import DEFAULT_CHUNK_FRAMES, frontend_for, stream_features

#: Every chunk is padded to a multiple of this many frames before the tokenizer runs.
PAD_FRAMES = 64


def takes_audio(config: TokenizerConfig) -> bool:
    return config.frontend.kind != "none"


def input_suffixes(config: TokenizerConfig) -> tuple[str, ...]:
    """What a tokenizer reads: audio files with a front end, feature files without."""
    return AUDIO_SUFFIXES if takes_audio(config) else FEATURE_SUFFIXES


def input_kind(config: TokenizerConfig) -> str:
    return "audio" if takes_audio(config) else "feature"


def iter_features(
    config: TokenizerConfig,
    path: Path,
    *,
    layout: str = "tc",
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
) -> Iterator[np.ndarray]:
    """``[t, dim]`` feature chunks of one input, checked against ``config.features.dim``."""
    if takes_audio(config):
        chunks = stream_features(path, frontend_for(config.frontend), channel=channel,
                                 chunk_frames=chunk_frames)  # fmt: skip
    else:
        chunks = iter([read_features(path, layout)])
    want = config.features.dim
    for chunk in chunks:
        if want is not None and chunk.shape[1] != want:
            hint = " (is the file [dim, frames]? try --layout ct)" if chunk.shape[0] == want else ""
            raise InputError(
                f"{path}: features have dim {chunk.shape[1]}, the checkpoint expects {want}{hint}"
            )
        yield chunk


def load_features(
    config: TokenizerConfig, path: Path, *, layout: str = "tc", channel: int | None = None
) -> np.ndarray:
    """All features of one input, ``[T, dim]``."""
    return np.concatenate(list(iter_features(config, path, layout=layout, channel=channel)))


def encode_features(
    checkpoint: Checkpoint, *chunks: np.ndarray, levels: int | None = None, beam: int = 1
) -> list[np.ndarray]:
    """Codes ``[T_i, G]`` int64 of each ``[T_i, F]`` chunk, computed in one batch.

    Each chunk is zero-padded to a multiple of :data:`PAD_FRAMES` frames, so every matrix
    product sees at least that many rows: BLAS kernels change their summation order for a
    handful of rows (seen below 8 here), but above that a row's result does not depend on
    what else is in the batch. So a file gives the same codes alone or batched.
    """
    tok = checkpoint.tokenizer
    padded = []
    for chunk in chunks:
        pad = -chunk.shape[0] % PAD_FRAMES
        padded.append(np.pad(chunk, ((0, pad), (0, 0))) if pad else chunk)
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(padded), dtype=np.float32))
    codes = tok.encode(x.to(tok.mean.device), levels=levels, beam=beam).cpu().numpy()
    out, start = [], 0
    for chunk, p in zip(chunks, padded, strict=True):
        out.append(codes[start : start + chunk.shape[0]])
        start += p.shape[0]
    return out


def write_token_file(
    checkpoint: Checkpoint, out_path: Path, codes: np.ndarray, *, source: str,
    channel: int | None = None,
) -> None:  # fmt: skip
    tok = checkpoint.tokenizer
    config = tok.config
    names, cards = tok.columns(codes.shape[1] if tok.config.quantizer.family == "rvq" else None)
    write_tokens(
        out_path,
        codes,
        checkpoint_id=checkpoint.id,
        column_names=names,
        cardinalities=cards,
        quantizer=tok.quantizer.config() | {"family": config.quantizer.family},
        frame_rate=config.features.frame_rate,
        source=source,
        channel=channel,
    )


def encode_file(
    checkpoint: Checkpoint,
    in_path: Path,
    out_path: Path,
    *,
    layout: str = "tc",
    channel: int | None = None,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
    levels: int | None = None,
    beam: int = 1,
) -> np.ndarray:
    """Encode one input to one token file (written atomically); returns the codes."""
    config = checkpoint.tokenizer.config
    chunks = iter_features(
        config, in_path, layout=layout, channel=channel, chunk_frames=chunk_frames
    )
    codes = np.concatenate(
        [encode_features(checkpoint, c, levels=levels, beam=beam)[0] for c in chunks]
    )
    write_token_file(checkpoint, out_path, codes, source=str(in_path), channel=channel)
    return codes


def check_made_by(
    checkpoint: Checkpoint, made_by: str, cardinalities: list[int], where: Path
) -> None:
    """Tokens must come from this checkpoint, with its columns or (RVQ) its first levels."""
    if made_by != checkpoint.id:
        raise InputError(
            f"{where}: made by checkpoint {made_by[:12] or '?'}, "
            f"not by {checkpoint.path.name} ({checkpoint.id[:12]})"
        )
    full = checkpoint.tokenizer.column_cardinalities
    prefix = bool(cardinalities) and cardinalities == full[: len(cardinalities)]
    if cardinalities != full and not (
        checkpoint.tokenizer.config.quantizer.family == "rvq" and prefix
    ):
        raise InputError(f"{where}: its code columns do not match the checkpoint's")


def read_tokens_for(checkpoint: Checkpoint, path: Path) -> TokenFile:
    """Read a token file and refuse it when another checkpoint made it."""
    tokens = read_tokens(path)
    check_made_by(checkpoint, tokens.checkpoint_id, tokens.cardinalities, path)
    return tokens


def decode_codes(checkpoint: Checkpoint, codes: np.ndarray) -> np.ndarray:
    tok = checkpoint.tokenizer
    c = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64)).to(tok.mean.device)
    return tok.decode(c).cpu().numpy().astype(np.float32)


def write_decoded(
    checkpoint: Checkpoint,
    codes: np.ndarray,
    out_path: Path,
    *,
    audio: bool,
    levels: int | None = None,
) -> int:
    """Decode ``codes`` (RVQ: their first ``levels`` columns) to ``.npy`` features, or with
    ``audio`` to a Griffin-Lim wav; returns the frame count."""
    if levels is not None:
        if levels > codes.shape[1]:
            raise InputError(
                f"{out_path.name}: --levels {levels}, the tokens have {codes.shape[1]}"
            )
        codes = codes[:, :levels]
    features = decode_codes(checkpoint, codes)
    if audio:
        config = checkpoint.tokenizer.config
        if not takes_audio(config):
            raise InputError(
                f"{checkpoint.path}: --audio needs a checkpoint with an audio front end"
            )
        frontend = frontend_for(config.frontend)
        write_wav(out_path, frontend.to_audio(features), config.frontend.sample_rate)
    else:
        write_features(out_path, features)
    return int(codes.shape[0])


def decode_file(
    checkpoint: Checkpoint,
    in_path: Path,
    out_path: Path,
    *,
    audio: bool = False,
    levels: int | None = None,
) -> int:
    """Decode one token file (see :func:`write_decoded`)."""
    codes = read_tokens_for(checkpoint, in_path).codes
    return write_decoded(checkpoint, codes, out_path, audio=audio, levels=levels)


def open_corpus_for(checkpoint: Checkpoint, root: Path):  # -> Corpus
    """Open a corpus folder and refuse it when another checkpoint made it."""
    from tokquant.formats.corpus import Corpus

    corpus = Corpus(root)
    check_made_by(checkpoint, corpus.checkpoint_id, corpus.cardinalities, root)
    return corpus
