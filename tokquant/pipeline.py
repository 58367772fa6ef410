"""File-level operations the CLI loops over: one feature file in, one token file out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tokquant.errors import InputError
from tokquant.formats.checkpoint import Checkpoint
from tokquant.formats.features import read_features, write_features
from tokquant.formats.tokens import TokenFile, read_tokens, write_tokens


def load_features_for(checkpoint: Checkpoint, path: Path, layout: str) -> np.ndarray:
    """Read features and check their dim against the checkpoint."""
    features = read_features(path, layout)
    want = checkpoint.tokenizer.feature_dim
    if features.shape[1] != want:
        hint = " (is the file [dim, frames]? try --layout ct)" if features.shape[0] == want else ""
        raise InputError(
            f"{path}: features have dim {features.shape[1]}, the checkpoint expects {want}{hint}"
        )
    return features


def encode_features(checkpoint: Checkpoint, features: np.ndarray) -> np.ndarray:
    """``[T, F]`` float32 -> ``[T, G]`` int64 codes on the checkpoint's device."""
    tok = checkpoint.tokenizer
    x = torch.from_numpy(features).to(tok.mean.device)
    return tok.encode(x).cpu().numpy()


def encode_file(
    checkpoint: Checkpoint, in_path: Path, out_path: Path, *, layout: str = "tc", source: str = ""
) -> np.ndarray:
    """Encode one feature file to one token file; returns the codes."""
    features = load_features_for(checkpoint, in_path, layout)
    codes = encode_features(checkpoint, features)
    tok = checkpoint.tokenizer
    write_tokens(
        out_path,
        codes,
        checkpoint_id=checkpoint.id,
        column_names=tok.column_names,
        cardinalities=tok.column_cardinalities,
        quantizer=tok.quantizer.config() | {"family": tok.config.quantizer.family},
        frame_rate=tok.config.features.frame_rate,
        source=source or str(in_path),
    )
    return codes


def read_tokens_for(checkpoint: Checkpoint, path: Path) -> TokenFile:
    """Read a token file and refuse it when another checkpoint made it."""
    tokens = read_tokens(path)
    if tokens.checkpoint_id != checkpoint.id:
        raise InputError(
            f"{path}: made by checkpoint {tokens.checkpoint_id[:12] or '?'}, "
            f"not by {checkpoint.path.name} ({checkpoint.id[:12]})"
        )
    if tokens.cardinalities != checkpoint.tokenizer.column_cardinalities:
        raise InputError(f"{path}: its code columns do not match the checkpoint's")
    return tokens


def decode_codes(checkpoint: Checkpoint, codes: np.ndarray) -> np.ndarray:
    tok = checkpoint.tokenizer
    c = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64)).to(tok.mean.device)
    return tok.decode(c).cpu().numpy().astype(np.float32)


def decode_file(checkpoint: Checkpoint, in_path: Path, out_path: Path) -> int:
    """Decode one token file to a ``.npy`` feature file; returns its frame count."""
    tokens = read_tokens_for(checkpoint, in_path)
    write_features(out_path, decode_codes(checkpoint, tokens.codes))
    return tokens.num_frames
