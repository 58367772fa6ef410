"""What the export formats write: one corpus shard's utterances, laid out as tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokquant.data.layouts import TokenBatch, TokenLayout


@dataclass
class ExportRows:
    """Utterance ``i``: ``keys[i]``, ``tokens.tokens(i)``, ``tokens.durations_of(i)``
    (with dedup), ``num_frames[i]`` (frames in the corpus, before dedup) and
    ``metadata[i]`` (joined columns; empty dicts when there is no metadata)."""

    keys: list[str]
    tokens: TokenBatch
    num_frames: np.ndarray
    metadata: list[dict[str, Any]]
    layout: TokenLayout
    #: what the export records about itself (tokquant version, checkpoint, layout, ...)
    info: dict[str, Any]
    #: metadata column -> bool | int64 | float64 | string
    metadata_columns: dict[str, str]
