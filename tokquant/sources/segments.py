"""Part of a recording as an input: a Kaldi segment, a lhotse cut's offset and duration.

The rounding rule, written once: a time ``t`` seconds into a recording at ``rate`` Hz is
sample ``floor(t * rate + 1/2)`` (round half up), computed exactly from the decimal text
(``Fraction("0.0625") * 16000``), never through a binary float. A segment ``[start,
end)`` holds samples ``[round(start * rate), round(end * rate))`` of the recording at its
own rate; resampling (where the front end needs it) happens after the cut, as it does for
a file holding just those samples. So a segment's codes equal those of the cut audio
written as a file. An end past the recording by at most :data:`MAX_OVERSHOOT` seconds is
clipped to it (Kaldi's ``extract-segments`` default); further out, or a start at or past
the end, fails that segment alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tokquant.errors import InputError
from tokquant.sources.base import Source

#: Seconds an end time may run past its recording and be clipped (as Kaldi allows).
MAX_OVERSHOOT = Fraction(1, 2)


#: A time as Kaldi writes one: ASCII digits, at most one dot, an exponent of at most two
#: digits (``1e100000000`` would be a 100-million-digit integer), a bounded length.
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?")
_MAX_CHARS = 40


def seconds(text: str) -> Fraction:
    """A time as written in a manifest, exactly; ValueError for anything but a
    non-negative decimal number in Kaldi's grammar (no ``1_0``, ``1/3``, ``nan`` or
    non-ASCII digits, which ``Fraction`` alone would take)."""
    text = text.strip(" \t")
    if len(text) > _MAX_CHARS or not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a time in seconds: {text[:_MAX_CHARS]!r}")
    return Fraction(text)


def sample_at(time: Fraction, rate: int) -> int:
    """The sample ``time`` seconds in (round half up; see the module docstring)."""
    return int((time * rate + Fraction(1, 2)) // 1)


class SegmentReader:
    """A reader's samples ``[start, stop)``, read as a reader of their own."""

    def __init__(self, reader: Any, start: int, stop: int, name: str) -> None:
        self._reader = reader
        self._start = start
        self.path = name
        self.sample_rate = reader.sample_rate
        self.channels = reader.channels
        self.num_samples = stop - start

    def read(self, start: int, stop: int) -> Any:
        start = max(0, min(start, self.num_samples))
        stop = max(start, min(stop, self.num_samples))
        return self._reader.read(self._start + start, self._start + stop)


@dataclass(frozen=True)
class SegmentSource(Source):
    """Seconds ``[start, end)`` of the recording ``recording`` (a Source itself: a file,
    or any other kind), keyed by the segment's id."""

    recording: Source = field(kw_only=True)
    start: Fraction = field(kw_only=True)
    end: Fraction = field(kw_only=True)
    where: str = field(kw_only=True)  # the manifest line that named it, for messages

    @property
    def origin(self) -> str:
        return f"{self.recording.origin}#{float(self.start):g}-{float(self.end):g}"

    @contextmanager
    def open_audio(self) -> Iterator[Any]:
        with self.recording.open_audio() as reader:
            rate, total = reader.sample_rate, reader.num_samples
            first, last = sample_at(self.start, rate), sample_at(self.end, rate)
            if first >= total or last > total + sample_at(MAX_OVERSHOOT, rate):
                raise InputError(
                    f"{self.where}: segment {float(self.start):g}-{float(self.end):g} s is "
                    f"outside its recording ({total / rate:g} s, {self.recording.origin})"
                )
            yield SegmentReader(reader, first, min(last, total), self.origin)

    def audio_length(self) -> tuple[int, int] | None:
        length = self.recording.audio_length()
        if length is None:
            return None
        total, rate = length
        first = sample_at(self.start, rate)
        return max(0, min(sample_at(self.end, rate), total) - first), rate
