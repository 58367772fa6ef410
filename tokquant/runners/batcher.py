"""Encode many inputs fast: background loading, several files per tokenizer batch.

Worker threads read files and compute features (soundfile, numpy and torch's DSP release
the GIL) while the calling thread packs the frames of consecutive files into batches of
about ``batch_frames`` and runs the tokenizer once per batch. Results come back in input
order, one :class:`Encoded` per input.

Codes never depend on batching: the tokenizer pads every chunk (see
:meth:`tokquant.tokenizer.Tokenizer.encode_batch`).
Long audio (more frames than :data:`STREAM_FRAMES`) is not loaded whole: it is streamed
chunk by chunk in the calling thread when its turn comes, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from tokquant.audio.frontend import DEFAULT_CHUNK_FRAMES
from tokquant.runners.each import attempt
from tokquant.runners.features import FeatureReader
from tokquant.sources import Source
from tokquant.tokenizer import DEFAULT_BATCH_FRAMES
from tokquant.tokenizer.model import Tokenizer

#: Audio longer than this many frames is streamed instead of loaded whole (~11 min).
STREAM_FRAMES = 1 << 16


@dataclass
class Encoded:
    """One input's outcome: its codes ``[T, G]`` int64, or the one-line reason it failed."""

    item: Source
    codes: np.ndarray | None = None
    error: str | None = None


def encode_features(
    tok: Tokenizer, *chunks: np.ndarray, levels: int | None = None, beam: int | None = None
) -> list[np.ndarray]:
    """Codes ``[T_i, G]`` int64 of each ``[T_i, F]`` chunk, computed in one batch by
    :meth:`Tokenizer.encode_batch`, whose padding makes them equal to each alone."""
    tensors = [torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)) for c in chunks]
    return [c.cpu().numpy() for c in tok.encode_batch(tensors, levels=levels, beam=beam)]


def encode_streamed(
    tok: Tokenizer,
    reader: FeatureReader,
    item: Source,
    *,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
    levels: int | None = None,
    beam: int | None = None,
) -> np.ndarray:
    """Codes ``[T, G]`` of one input read chunk by chunk (None: the whole input at once);
    equal to its codes in any batch."""
    chunks = reader.chunks(item, chunk_frames)
    return np.concatenate([encode_features(tok, c, levels=levels, beam=beam)[0] for c in chunks])


def encode_items(
    tok: Tokenizer,
    items: Iterable[Source],
    *,
    layout: str | None = None,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    workers: int = 2,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    levels: int | None = None,
    beam: int | None = None,
) -> Iterator[Encoded]:
    """Yield an :class:`Encoded` per item, in order (features in ``layout``; None: the
    checkpoint's)."""
    reader = FeatureReader.of(tok, layout)  # the front end is built here, before the loaders

    def read(item: Source) -> np.ndarray | Encoded:
        frames = reader.expected_frames(item)
        if frames is not None and frames > STREAM_FRAMES:
            return Encoded(item)  # marker: stream it in the calling thread
        return reader.whole(item)

    def load(item: Source) -> np.ndarray | Encoded:
        failures: list[str] = []  # the per-input rule of every job (runners.each)
        got = attempt(lambda: read(item), failures)
        return Encoded(item, error=failures[0]) if failures else got  # type: ignore[return-value]

    def stream(item: Source) -> Encoded:
        failures: list[str] = []
        codes = attempt(
            lambda: encode_streamed(
                tok, reader, item, chunk_frames=chunk_frames, levels=levels, beam=beam
            ),
            failures,
        )
        return Encoded(item, error=failures[0]) if failures else Encoded(item, codes)

    def flush(batch: list[tuple[Source, np.ndarray]]) -> Iterator[Encoded]:
        if batch:
            codes = encode_features(tok, *[f for _, f in batch], levels=levels, beam=beam)
            for (item, _), c in zip(batch, codes, strict=True):
                yield Encoded(item, c)

    with ThreadPoolExecutor(
        max_workers=max(1, workers), thread_name_prefix="tokquant-load"
    ) as pool:
        loaded = _prefetch(pool, load, iter(items), depth=max(2, 2 * workers))
        batch: list[tuple[Source, np.ndarray]] = []
        size = 0
        for item, result in loaded:
            if isinstance(result, Encoded):
                yield from flush(batch)
                batch, size = [], 0
                yield result if result.error is not None else stream(item)
                continue
            batch.append((item, result))
            size += result.shape[0]
            if size >= batch_frames:
                yield from flush(batch)
                batch, size = [], 0
        yield from flush(batch)


def _prefetch(pool: ThreadPoolExecutor, load, items: Iterator[Source], *, depth: int):
    """``(item, load(item))`` in order, with up to ``depth`` loads running ahead."""
    queue: deque[tuple[Source, Future]] = deque()
    while True:
        while len(queue) < depth:
            item = next(items, None)
            if item is None:
                break
            queue.append((item, pool.submit(load, item)))
        if not queue:
            return
        item, future = queue.popleft()
        yield item, future.result()
