"""What every job on a checkpoint begins with: its tokenizer, and where its inputs live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.errors import InputError

if TYPE_CHECKING:
    from tokquant.sources import SourceOptions
    from tokquant.tokenizer import Tokenizer


def open_tokenizer(checkpoint: str | Path, device: str, ssl_weights: str | Path | None = None
                   ) -> Tokenizer:  # fmt: skip
    """The checkpoint's tokenizer on ``device``, its SSL encoder read from
    ``ssl_weights`` when given (checked against the sha256 the checkpoint recorded)."""
    from tokquant.api import load

    tok = load(Path(checkpoint), device)
    if ssl_weights is not None:
        frontend = tok.config.frontend
        if frontend.kind != "ssl":
            raise InputError(f"--ssl-weights: {checkpoint} has no SSL front end ({frontend.kind})")
        frontend.weights = str(ssl_weights)
    return tok


def where_inputs_live(audio_column: str = "audio", key_column: str | None = None,
                      audio_member: str | None = None, segments: str | Path | None = None
                      ) -> SourceOptions:  # fmt: skip
    """How to read manifests and containers (Parquet columns, WebDataset members, Kaldi
    segments)."""
    from tokquant.sources import SourceOptions

    return SourceOptions(audio_column, key_column, audio_member,
                         None if segments is None else Path(segments))  # fmt: skip
