"""What every input is: a :class:`Source`, a key and a way to read its audio or features.

Jobs never open a path themselves; they ask a source. A file on disk is one kind
(:class:`FileSource`); every other place a corpus lives (a line of a Kaldi ``wav.scp``, a
segment of a recording, a row of a Parquet file, a member of a tar) is another kind with
the same four methods, so encode, train, stats and audit read it with no change of their
own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tokquant.audio.io import AudioReader
from tokquant.errors import InputError
from tokquant.formats.features import read_features
from tokquant.storage.regular import open_regular, read_regular

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Source:
    """One input. ``key`` is what its outputs mirror (a relative path: token files under
    ``--out``, a corpus key without its suffix); ``channel`` picks one audio channel
    (None: the mix); :attr:`origin` names it in messages and in the outputs' ``source``."""

    key: Path
    channel: int | None = None
    #: The key is a name a manifest gave (checked as a corpus key before use), not a path
    #: found on disk.
    keyed_by_name: ClassVar[bool] = True

    @property
    def origin(self) -> str:
        raise NotImplementedError

    @property
    def path(self) -> Path | None:
        """The file it is, where it is one whole file (outputs must not replace it)."""
        return None

    @property
    def unit(self) -> object:
        """What ranks split by: inputs of one unit (a tar file, a Parquet row group) go
        to one rank together, so ranks read disjoint bytes. None: each input alone."""
        return None

    def stem(self, suffixes: tuple[str, ...]) -> Path:
        """What its outputs are named after: the key (an utterance id is kept whole)."""
        return self.key

    def channel_key(self, channel: int) -> Path:
        """The key of one of its channels (``--channels split``)."""
        return self.key.with_name(f"{self.key.name}.ch{channel}")

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
    keyed_by_name: ClassVar[bool] = False

    @property
    def origin(self) -> str:
        return str(self.file)

    @property
    def path(self) -> Path:
        return self.file

    def stem(self, suffixes: tuple[str, ...]) -> Path:
        """The key without its file suffix."""
        return strip_suffix(self.key, suffixes)

    def channel_key(self, channel: int) -> Path:
        """``NAME.chC.EXT``: the suffix stays last, so outputs still drop it."""
        return self.key.with_name(f"{self.key.stem}.ch{channel}{self.key.suffix}")

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        with AudioReader(self.file) as reader:
            yield reader

    def read_features(self, layout: str) -> np.ndarray:
        return read_features(self.file, layout)

    def audio_length(self) -> tuple[int, int] | None:
        # start-up time: soundfile
        import soundfile as sf

        try:  # never opened by name: a FIFO would block here
            with open_regular(self.file) as fh, sf.SoundFile(fh.fileno(), closefd=False) as f:
                return int(f.frames), max(int(f.samplerate), 1)
        except Exception:  # noqa: BLE001 - reported when the file is read
            return None


def strip_suffix(key: Path, suffixes: tuple[str, ...]) -> Path:
    """``key`` without its input suffix; kept whole where what is left is no name
    (``.npy``, ``..npy``), so those still get outputs of their own."""
    name = key.name
    for s in sorted(suffixes, key=len, reverse=True):
        if name.lower().endswith(s) and name[: -len(s)] not in ("", ".", ".."):
            return key.with_name(name[: -len(s)])
    return key


@dataclass(frozen=True)
class Failed(Source):
    """An entry of a manifest or container that cannot be read (a null key, a hard-link
    member, an archive offset): it fails alone, with ``message``, when the job reads it,
    and the rest go on."""

    where: str = field(kw_only=True)
    message: str = field(kw_only=True)

    @property
    def origin(self) -> str:
        return self.where

    def _fail(self) -> InputError:
        return InputError(f"{self.where}: {self.message}")

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        raise self._fail()
        yield

    def read_features(self, layout: str) -> np.ndarray:
        raise self._fail()

    def channels(self) -> int:
        raise self._fail()


def manifest_lines(path: Path) -> list[str]:
    """The lines of a manifest (wav.scp, segments, a TSV, a list), or one line saying
    why not (see :func:`text_lines`)."""
    return text_lines(read_regular(path), str(path))


def text_lines(data: bytes, where: str) -> list[str]:
    """Manifest text as the tools that write manifests write it: UTF-8 (a leading
    byte-order mark dropped), lines ending at ``\n`` alone (a ``\r`` before it dropped),
    so a U+2028 or NEL inside a name stays part of the name."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{where}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def first_line(path: Path, *, entries_only: bool = False) -> str:
    """A manifest's first line ("" if none), or with ``entries_only`` its first that is
    neither blank nor a ``#`` comment, read without reading the rest: sniffing what a
    list is costs a line, not the list. Unreadable: one line saying why."""
    with open_regular(path) as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
            except UnicodeDecodeError:
                raise InputError(f"{path}:{number}: not UTF-8 text") from None
            line = line.removeprefix("\ufeff") if number == 1 else line
            if not entries_only or (line.strip() and not line.startswith("#")):
                return line
    return ""


#: What Kaldi's tools split fields on: ASCII whitespace only (a no-break space or any
#: other Unicode space is part of a field).
_ASCII_SPACE = re.compile(r"[ \t\r\f\v]+")


def ascii_fields(line: str) -> list[str]:
    """A manifest line's fields, split on ASCII whitespace as Kaldi splits them."""
    return [f for f in _ASCII_SPACE.split(line) if f]
