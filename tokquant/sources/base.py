"""What every input is: a :class:`Source`, a key and a way to read its audio or features.

Jobs never open a path themselves; they ask a source. A file on disk is one kind
(:class:`FileSource`); every other place a corpus lives (a line of a Kaldi ``wav.scp``, a
segment of a recording, a row of a Parquet file, a member of a tar) is another kind with
the same four methods, so encode, train, stats and audit read it with no change of their
own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Source:
    """One input. ``key`` is what its outputs mirror (a relative path: token files under
    ``--out``, a corpus key without its suffix); ``channel`` picks one audio channel
    (None: the mix); :attr:`origin` names it in messages and in the outputs' ``source``."""

    key: Path
    channel: int | None = None

    @property
    def origin(self) -> str:
        raise NotImplementedError

    @property
    def path(self) -> Path | None:
        """The file it is, where it is one whole file (outputs must not replace it)."""
        return None

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        """An open reader with ``path`` (its name in messages), ``sample_rate``,
        ``num_samples``, ``channels`` and ``read(start, stop)`` -> float32 ``[n, C]``,
        as :class:`tokquant.audio.io.AudioReader`; InputError when it cannot be read."""
        raise NotImplementedError
        yield

    def read_features(self, layout: str) -> np.ndarray:
        """Its ``[T, dim]`` features (a feature-only checkpoint's input)."""
        raise NotImplementedError

    def audio_length(self) -> tuple[int, int] | None:
        """``(samples, sample_rate)`` from a header alone, cheaply (None: not known
        without reading; the audio is then loaded, not streamed)."""
        return None

    def channels(self) -> int:
        with self.open_audio() as reader:
            return int(reader.channels)

    def with_channel(self, channel: int | None, key: Path | None = None) -> Source:
        return dataclasses.replace(self, channel=channel, key=self.key if key is None else key)


@dataclass(frozen=True)
class FileSource(Source):
    """A whole audio or feature file."""

    file: Path = field(kw_only=True)

    @property
    def origin(self) -> str:
        return str(self.file)

    @property
    def path(self) -> Path:
        return self.file

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        from tokquant.audio.io import AudioReader

        with AudioReader(self.file) as reader:
            yield reader

    def read_features(self, layout: str) -> np.ndarray:
        from tokquant.formats.features import read_features

        return read_features(self.file, layout)

    def audio_length(self) -> tuple[int, int] | None:
        import soundfile as sf

        try:
            info = sf.info(str(self.file))
        except Exception:  # noqa: BLE001 - reported when the file is read
            return None
        return int(info.frames), max(int(info.samplerate), 1)
