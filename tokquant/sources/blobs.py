"""Encoded audio held inside a container (a tar member, a Parquet cell) as an input.

The bytes are fetched when the input is read, on a loader thread, and decoded by
soundfile from memory: no temp files. Everything a file may hold (wav, flac, mp3, ogg,
...) may be held here; the codes equal those of the same bytes written as a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tokquant.audio.io import AudioReader
from tokquant.sources.base import Source


@dataclass(frozen=True)
class BlobSource(Source):
    """An input whose audio is a blob of encoded bytes; subclasses say how to fetch it."""

    def fetch(self) -> bytes:
        raise NotImplementedError

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        with AudioReader.from_bytes(self.fetch(), self.origin) as reader:
            yield reader

    def audio_length(self) -> tuple[int, int] | None:
        return None  # known only by decoding; a blob is an utterance, loaded whole
