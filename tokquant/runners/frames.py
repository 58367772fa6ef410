"""Training data: the frames of a job's sources, every one or a uniform sample drawn while
streaming (memory bounded by the sample, not the corpus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tokquant.errors import InputError
from tokquant.runners.features import FeatureReader
from tokquant.sources import Source
from tokquant.tokenizer.training import NextFrames

if TYPE_CHECKING:
    from tokquant.jobs.report import Progress


class TrainingFrames(NamedTuple):
    """Training data: ``frames`` ``[N, dim]``, and ``lengths``, the frames of each input in
    order (they sum to N), so training knows which frames are neighbours in time. A
    sample's frames are not neighbours: ``lengths`` is None, and ``next_frames`` holds the
    frame after each one when it was asked for."""

    frames: np.ndarray
    lengths: list[int] | None
    next_frames: NextFrames | None = None


def load_frames(
    reader: FeatureReader,
    items: list[Source],
    progress: Progress | None = None,
    *,
    max_frames: int | None = None,
    seed: int = 0,
    with_next: bool = False,
) -> TrainingFrames:
    """The frames of ``items`` (training data): every frame, or with ``max_frames`` a
    uniform sample of that many across all inputs, drawn while streaming so memory is
    bounded by ``max_frames`` (and one input's chunk), not by the corpus. ``with_next``
    also keeps each sampled frame's next frame (twice the sample's memory), for
    ``train.interpolate``."""
    sample = FrameSample(max_frames, seed, with_next) if max_frames is not None else None
    arrays: list[np.ndarray] = []
    lengths: list[int] = []
    dim: int | None = None
    if progress is not None:
        progress.start("load", len(items))
    for item in items:
        lengths.append(0)
        for chunk in reader.chunks(item):
            lengths[-1] += chunk.shape[0]
            if dim is None:
                dim = chunk.shape[1]
            elif chunk.shape[1] != dim:
                raise InputError(
                    f"{item.origin}: features have dim {chunk.shape[1]}, {items[0].origin} has {dim}"
                )
            if sample is None:
                arrays.append(chunk)
            else:
                sample.add(chunk)
        if sample is not None:
            sample.end_input()
        if progress is not None:
            progress.advance()
    if sample is not None:
        return TrainingFrames(sample.frames(), None, sample.next_frames())
    return TrainingFrames(np.concatenate(arrays), lengths)


class FrameSample:
    """A uniform sample of ``size`` frames from a stream of any length (reservoir
    sampling, Algorithm R, a chunk at a time): after ``n`` frames every one of them is in
    the sample with probability ``size / n``. ``with_next`` also keeps each kept frame's
    next frame in its input (the sample itself is the same); call :meth:`end_input` at
    the end of each input, so its last frame gets none."""

    def __init__(self, size: int, seed: int = 0, with_next: bool = False) -> None:
        if size < 1:
            raise InputError(f"`max_frames` must be at least 1, found {size}")
        self.size = size
        self.seen = 0
        self.rng = np.random.default_rng(seed)
        self.with_next = with_next
        self.reservoir: np.ndarray | None = None
        self.following: np.ndarray | None = None
        self.present = np.zeros(0, dtype=bool)
        self.positions = np.zeros(0, dtype=np.int64)
        self._open_slot: int | None = None  # holds the last frame seen; its next is to come

    def _grow(self, needed: int, dim: int) -> None:
        """Room for ``needed`` frames: the arrays grow (doubling, at most to ``size``) with
        what is read, so ``--max-frames`` far above the corpus costs the corpus, not the
        sample asked for."""
        have = 0 if self.reservoir is None else self.reservoir.shape[0]
        if needed <= have:
            return
        new = min(self.size, max(needed, 2 * have, 1024))
        self.reservoir = _resized(self.reservoir, (new, dim), np.float32)
        if self.with_next:
            self.following = _resized(self.following, (new, dim), np.float32)
            self.present = _resized(self.present, (new,), bool)
            self.positions = _resized(self.positions, (new,), np.int64)

    def add(self, chunk: np.ndarray) -> None:
        n = chunk.shape[0]
        if n == 0:
            return
        if self._open_slot is not None:
            self.following[self._open_slot] = chunk[0]
            self.present[self._open_slot] = True
        fill = max(0, min(self.size - self.seen, n))
        self._grow(self.seen + fill, chunk.shape[1])
        self._store(np.arange(fill), self.seen + np.arange(fill), chunk)
        last_slot = self.seen + n - 1 if fill == n else None  # where the chunk's last frame is
        rest = chunk[fill:]
        if rest.shape[0]:
            index = self.seen + fill + np.arange(rest.shape[0])  # 0-based stream positions
            slot = self.rng.integers(0, index + 1)  # frame i replaces slot j < size w.p. size/(i+1)
            kept = np.flatnonzero(slot < self.size)
            # Sequential semantics: of several frames drawn to one slot, the last one stays.
            last = len(kept) - 1 - np.unique(slot[kept][::-1], return_index=True)[1]
            self._store(fill + kept[last], slot[kept[last]], chunk)
            last_slot = int(slot[-1]) if slot[-1] < self.size else None
        self._open_slot = last_slot if self.with_next else None
        self.seen += n

    def _store(self, rows: np.ndarray, slots: np.ndarray, chunk: np.ndarray) -> None:
        """Put ``chunk[rows]`` in ``slots``, with their next frames where the chunk has them."""
        self.reservoir[slots] = chunk[rows]
        if self.with_next:
            inside = rows + 1 < chunk.shape[0]
            self.following[slots[inside]] = chunk[rows[inside] + 1]
            self.present[slots] = inside
            self.positions[slots] = self.seen + rows

    def end_input(self) -> None:
        self._open_slot = None

    def next_frames(self) -> NextFrames | None:
        if not self.with_next:
            return None
        m = min(self.size, self.seen)
        if self.following is None:
            return NextFrames(np.zeros((0, 0), np.float32), self.present[:0], self.positions[:0])
        return NextFrames(self.following[:m], self.present[:m], self.positions[:m])

    def frames(self) -> np.ndarray:
        if self.reservoir is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self.reservoir[: min(self.size, self.seen)]


def _resized(old: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new array of ``shape`` starting with ``old``'s rows (the rest uninitialised)."""
    new = np.empty(shape, dtype=dtype)
    if old is not None:
        new[: old.shape[0]] = old
    return new
