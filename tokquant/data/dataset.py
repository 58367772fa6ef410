"""A torch Dataset on a corpus, for training code that reads tokens without an export.

Items come straight from the shards, read by byte range (only the bytes of the requested
utterance are read), laid out as :mod:`tokquant.data.layouts` says, so an item equals the
row an export of the same corpus with the same choices would hold. Each DataLoader worker
opens the shards itself: the Dataset pickles as the corpus path and its index.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tokquant.data.layouts import TokenLayout
from tokquant.formats.corpus import Corpus

if TYPE_CHECKING:
    from tokquant.formats.corpus import Corpus


class TokenDataset:
    """Map-style Dataset over a corpus' utterances.

    Args:
        corpus: corpus folder (``tokquant encode --shards``), or an open ``Corpus``.
        layout, offsets, dedup: see :mod:`tokquant.data.layouts`.
        max_frames: an utterance longer than this becomes consecutive windows of
            ``max_frames`` frames (the last one shorter), each its own item, so nothing
            is dropped and an epoch is deterministic. Windows are cut before dedup.

    An item is a dict: ``key``, ``start`` (first frame of the window), ``num_frames``,
    ``codes`` (int64 tensor: ids,: ``[T, G]``, or ``[T * G]`` interleaved) and, with dedup,
    ``durations`` ``[T]``. :meth:`collate` pads a batch of them.

    Example:
        >>> data = TokenDataset("tokens/", layout="delay", offsets=True, max_frames=1500)
        >>> loader = DataLoader(data, batch_size=16, num_workers=2, collate_fn=data.collate)
        >>> batch = next(iter(loader))  # codes [16, L, G], lengths [16], keys
    """

    def __init__(
        self,
        corpus: str | Path | Corpus,
        *,
        layout: str = "parallel",
        offsets: bool = False,
        dedup: bool = False,
        max_frames: int | None = None,
    ) -> None:
        opened = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
        if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
            raise ValueError(f"max_frames must be a positive integer or None. Found: {max_frames}")
        self.root = opened.root
        self.layout = TokenLayout(tuple(opened.cardinalities), layout, offsets, dedup)
        self.max_frames = max_frames
        #: (key, start, stop) of every item, in corpus order
        self.windows: list[tuple[str, int, int]] = []
        for u in opened.utterances():
            step = max_frames or max(u.frames, 1)
            for start in range(0, max(u.frames, 1), step):
                self.windows.append((u.key, start, min(start + step, u.frames)))
        self._corpus: Corpus | None = opened
        self._pid = os.getpid()

    @property
    def pad_id(self) -> int:
        """What :meth:`collate` pads with: delay's pad id, else one past the vocabulary."""
        return self.layout.vocab_size if self.layout.pad_id is None else self.layout.pad_id

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # start-up time: torch
        import torch

        key, start, stop = self.windows[index]
        codes = self._open().read(key, start, stop)
        tokens, durations = self.layout.encode(codes)
        item: dict[str, Any] = {
            "key": key,
            "start": start,
            "num_frames": stop - start,
            "codes": torch.from_numpy(tokens.astype(np.int64)),
        }
        if durations is not None:
            item["durations"] = torch.from_numpy(durations)
        return item

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """:func:`collate_tokens` with this dataset's pad id."""
        return collate_tokens(items, pad_id=self.pad_id)

    def _open(self) -> Corpus:
        # a forked worker must not share the parent's open shard handles
        if self._corpus is None or self._pid != os.getpid():
            self._corpus, self._pid = Corpus(self.root), os.getpid()
        return self._corpus

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_corpus": None}


def collate_tokens(items: list[dict[str, Any]], *, pad_id: int) -> dict[str, Any]:
    """Pad a list of :class:`TokenDataset` items into a batch.

    Returns ``codes`` ``[B, L, G]`` (or ``[B, L]`` interleaved) padded with ``pad_id``,
    ``lengths`` ``[B]`` (each item's token rows before padding), ``num_frames`` ``[B]``,
    ``keys``, ``starts`` and, with dedup, ``durations`` ``[B, L]`` padded with 0.
    """
    # start-up time: torch
    import torch
    from torch.nn.utils.rnn import pad_sequence

    tokens = [item["codes"] for item in items]
    batch: dict[str, Any] = {
        "codes": pad_sequence(tokens, batch_first=True, padding_value=pad_id),
        "lengths": torch.tensor([t.shape[0] for t in tokens], dtype=torch.int64),
        "num_frames": torch.tensor([item["num_frames"] for item in items], dtype=torch.int64),
        "keys": [item["key"] for item in items],
        "starts": [item["start"] for item in items],
    }
    if items and "durations" in items[0]:
        batch["durations"] = pad_sequence(
            [item["durations"] for item in items], batch_first=True, padding_value=0
        )
    return batch
