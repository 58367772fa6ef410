"""Encode many inputs fast: background loading, several files per device batch.

Worker threads read files and compute features (soundfile, numpy and torch's DSP release
the GIL) while the main thread packs the frames of consecutive files into batches of
about ``batch_frames`` and runs the tokenizer once per batch. Results come back in input
order. Codes are identical to encoding each file alone (see
:func:`tokquant.pipeline.encode_features`).

Long audio (more frames than :data:`STREAM_FRAMES`) is not loaded whole: it is streamed
chunk by chunk in the main thread when its turn comes, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokquant.errors import TokquantError
from tokquant.formats.checkpoint import Checkpoint
from tokquant.frontend import DEFAULT_CHUNK_FRAMES, frontend_for
from tokquant.inputs import InputItem
from tokquant.pipeline import encode_features, iter_features, load_features, takes_audio

#: Audio longer than this many frames is streamed instead of loaded whole (~11 min).
STREAM_FRAMES = 1 << 16
DEFAULT_BATCH_FRAMES = 1 << 16


@dataclass
class Encoded:
    """One input's outcome: its codes, or the one-line reason it failed."""

    item: InputItem
    codes: np.ndarray | None = None
    error: str | None = None


def _expected_frames(checkpoint: Checkpoint, path: Path) -> int | None:
    config = checkpoint.tokenizer.config
    if not takes_audio(config):
        return None
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - unreadable files fail later with a clean message
        return None
    resampled = -(-int(info.frames) * config.frontend.sample_rate // max(int(info.samplerate), 1))
    return frontend_for(config.frontend).num_frames(resampled)


def encode_items(
    checkpoint: Checkpoint,
    items: Iterable[InputItem],
    *,
    layout: str = "tc",
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    workers: int = 2,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    levels: int | None = None,
    beam: int = 1,
) -> Iterator[Encoded]:
    """Yield an :class:`Encoded` per item, in order."""
    config = checkpoint.tokenizer.config

    def load(item: InputItem) -> np.ndarray | Encoded:
        try:
            frames = _expected_frames(checkpoint, item.path)
            if frames is not None and frames > STREAM_FRAMES:
                return Encoded(item)  # marker: stream it in the main thread
            return load_features(config, item.path, layout=layout, channel=item.channel)
        except TokquantError as exc:
            return Encoded(item, error=str(exc))

    def stream(item: InputItem) -> Encoded:
        try:
            chunks = iter_features(config, item.path, layout=layout, channel=item.channel,
                                   chunk_frames=chunk_frames)  # fmt: skip
            return Encoded(
                item,
                np.concatenate(
                    [encode_features(checkpoint, c, levels=levels, beam=beam)[0] for c in chunks]
                ),
            )
        except TokquantError as exc:
            return Encoded(item, error=str(exc))

    items = iter(items)
    prefetch = max(2, 2 * workers)
    with ThreadPoolExecutor(
        max_workers=max(1, workers), thread_name_prefix="tokquant-load"
    ) as pool:
        queue: deque[tuple[InputItem, Future]] = deque()

        def refill() -> None:
            while len(queue) < prefetch:
                item = next(items, None)
                if item is None:
                    return
                queue.append((item, pool.submit(load, item)))

        refill()
        batch: list[tuple[InputItem, np.ndarray]] = []
        batch_size = 0
        while queue or batch:
            if queue and batch_size < batch_frames:
                item, future = queue.popleft()
                refill()
                loaded = future.result()
                if isinstance(loaded, Encoded):
                    yield from _flush(checkpoint, batch, levels, beam)
                    batch, batch_size = [], 0
                    yield loaded if loaded.error is not None else stream(item)
                    continue
                batch.append((item, loaded))
                batch_size += loaded.shape[0]
                continue
            yield from _flush(checkpoint, batch, levels, beam)
            batch, batch_size = [], 0


def _flush(
    checkpoint: Checkpoint,
    batch: list[tuple[InputItem, np.ndarray]],
    levels: int | None,
    beam: int,
) -> Iterator[Encoded]:
    if not batch:
        return
    codes = encode_features(checkpoint, *[f for _, f in batch], levels=levels, beam=beam)
    for (item, _), c in zip(batch, codes, strict=True):
        yield Encoded(item, c)
