"""What every job on a checkpoint begins with: its tokenizer, and where its inputs live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.errors import InputError
from tokquant.jobs.request import Request

if TYPE_CHECKING:
    from tokquant.sources import SourceOptions
    from tokquant.tokenizer.model import Tokenizer


def open_tokenizer(
    checkpoint: str | Path, device: str, ssl_weights: str | Path | None = None
) -> Tokenizer:
    """The checkpoint's tokenizer on ``device``, its SSL encoder read from
    ``ssl_weights`` when given (checked against the sha256 the checkpoint recorded)."""
    from tokquant.api import load

    tok = load(Path(checkpoint), device)
    if ssl_weights is not None:
        frontend = tok.config.frontend
        if frontend.kind != "ssl":
            raise InputError(f"`ssl_weights`: {checkpoint} has no SSL front end ({frontend.kind})")
        frontend.weights = str(ssl_weights)
    return tok


@dataclass(kw_only=True)
class InputOptions(Request):
    """Where a job's inputs live, as its request's keyword fields (the CLI's
    ``--audio-column``, ``--key-column``, ``--audio-member``, ``--segments``)."""

    #: Parquet / datasets: the column holding audio (bytes or paths)
    audio_column: str = "audio"
    #: Parquet / datasets: the key column (None: ``id``, else file names)
    key_column: str | None = None
    #: WebDataset: the member (field) holding audio (None: the first audio one)
    audio_member: str | None = None
    #: Kaldi: the segments file of a wav.scp (None: the one beside it, if any)
    segments: str | Path | None = None

    def source_options(self) -> SourceOptions:
        from tokquant.sources import SourceOptions

        segments = None if self.segments is None else Path(self.segments)
        return SourceOptions(self.audio_column, self.key_column, self.audio_member, segments)
