"""Resampling a stream in ranges, with memory bounded whatever the two rates are.

torchaudio's ``resample`` reduces the rates by their gcd to ``o -> n`` and builds a sinc
kernel of ``n x (o + 2 w)`` floats (``w``: the filter's half-width in input samples).
For the rates audio comes in (8, 16, 22.05, 44.1, 48 kHz ...) that is at most a few
hundred thousand floats. For a rate that shares almost no factor with the target
(16001 Hz, 32003 Hz, 999983 Hz to 16 kHz) it is gigabytes: 4.7 GB and 25 s for one
second of 16001 Hz audio, 64 GB asked for 999983 Hz.

So two paths give the same filter, torchaudio's windowed sinc (Hann window, 6 zero
crossings, roll-off 0.99):

- rates whose kernel is small (:data:`MAX_KERNEL_FLOATS`) go through torchaudio itself,
  as they always have (codes of such files are unchanged);
- others evaluate that same sinc at each output's exact position, for one block of
  outputs at a time: ``2 w + 2`` taps per output, memory ``block x taps`` floats,
  whatever ``o`` and ``n`` are. The result equals torchaudio's to float rounding (a
  test compares the two on a rate pair both can do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tokquant.audio._torchaudio import torchaudio

#: torchaudio.functional.resample defaults, which set the filter's reach.
LOWPASS_WIDTH = 6
ROLLOFF = 0.99
#: Largest torchaudio kernel (floats) built; above it outputs are computed directly.
MAX_KERNEL_FLOATS = 1 << 22
#: Floats of taps held at once by the direct path (about 16 MB in float64 with indices).
_DIRECT_BLOCK_FLOATS = 1 << 20


@dataclass(frozen=True)
class Resampling:
    """``orig -> new`` Hz, reduced to ``o -> n`` with the sinc's half-width ``width`` (in
    input samples); ``direct`` when torchaudio's kernel would be over the bound."""

    orig: int
    new: int
    o: int
    n: int
    width: int

    @classmethod
    def between(cls, orig: int, new: int) -> Resampling:
        g = math.gcd(orig, new)
        o, n = orig // g, new // g
        width = math.ceil(LOWPASS_WIDTH * o / (min(o, n) * ROLLOFF))
        return cls(orig, new, o, n, width)

    @property
    def direct(self) -> bool:
        return self.n * (self.o + 2 * self.width) > MAX_KERNEL_FLOATS

    def output_length(self, num_samples: int) -> int:
        """Samples out for ``num_samples`` in (torchaudio's ``ceil(n * N / o)``)."""
        return -(-num_samples * self.n // self.o)

    def margin(self) -> int:
        """torchaudio path: input samples read past each side of a range (a multiple of
        ``o`` wider than the filter), so outputs away from a chunk's edges are exact."""
        return (self.width // self.o + 2) * self.o

    def input_range(self, start: int, stop: int, total: int) -> tuple[int, int]:
        """Input samples ``[in0, in1)`` that outputs ``[start, stop)`` are computed from."""
        if self.direct:
            first = start * self.o // self.n - self.width
            last = (max(stop, start + 1) - 1) * self.o // self.n + self.width + 2
        else:
            first = (start // self.n) * self.o - self.margin()
            last = -(-stop * self.o // self.n) + self.margin()
        return max(0, first), min(total, last)

    def resample(self, chunk: torch.Tensor, in0: int, start: int, stop: int) -> torch.Tensor:
        """Outputs ``[start, stop)`` from input samples ``chunk`` = ``[in0, in0 + len)``
        (as :meth:`input_range` gave them; samples outside the signal are zeros)."""
        if self.direct:
            return direct_sinc(chunk, in0, start, stop, self)

        out = torchaudio()[0].resample(chunk, self.orig, self.new)
        first = in0 // self.o * self.n
        return out[start - first : stop - first]


def direct_sinc(
    chunk: torch.Tensor, in0: int, start: int, stop: int, r: Resampling
) -> torch.Tensor:
    """torchaudio's windowed-sinc resampling evaluated at outputs ``[start, stop)``.

    Output ``j`` is ``sum_i x[i] h((i/o - j/n) * base)`` with ``base = min(o, n) * 0.99``
    and ``h(t) = sinc(t) * cos(pi t / 12)^2 * base / o`` for ``|t| <= 6`` (0 beyond),
    torchaudio's kernel written as a function of time; ``i`` runs over the ``2 w + 2``
    input samples around ``j * o / n``. Computed in float64, returned as float32.
    """
    x = chunk.detach().to(torch.float64).cpu().numpy()
    base = min(r.o, r.n) * ROLLOFF
    taps = np.arange(-r.width, r.width + 2, dtype=np.int64)
    block = max(1, _DIRECT_BLOCK_FLOATS // taps.size)
    out = np.empty(max(0, stop - start), dtype=np.float64)
    for b0 in range(start, stop, block):
        j = np.arange(b0, min(stop, b0 + block), dtype=np.int64)
        i = (j * r.o // r.n)[:, None] + taps[None, :]  # input sample of each tap
        # i/o - j/n = (i n - j o) / (o n): exact in integers, one rounding in the division
        t = (i * r.n - (j * r.o)[:, None]) / (r.o * r.n) * base
        t = np.clip(t, -LOWPASS_WIDTH, LOWPASS_WIDTH)
        window = np.cos(t * math.pi / LOWPASS_WIDTH / 2) ** 2
        kernel = np.sinc(t) * window * (base / r.o)
        local = i - in0
        inside = (local >= 0) & (local < x.size)
        samples = np.where(inside, x[np.clip(local, 0, max(0, x.size - 1))], 0.0)
        out[b0 - start : b0 - start + j.size] = (samples * kernel).sum(axis=1)
    return torch.from_numpy(out.astype(np.float32))
