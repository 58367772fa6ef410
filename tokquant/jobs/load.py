"""Where a job's inputs live: the request fields every job that reads inputs shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.jobs.request import Request

if TYPE_CHECKING:
    from tokquant.sources import SourceOptions


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
        # start-up time: numpy
        from tokquant.sources import SourceOptions

        segments = None if self.segments is None else Path(self.segments)
        return SourceOptions(self.audio_column, self.key_column, self.audio_member, segments)
