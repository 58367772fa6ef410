"""Ray Data: a tokenizer as a callable class for ``map_batches``, with the codes
``tokquant encode`` writes for the same audio.

    >>> from tokquant.integrations.ray import Tokenize
    >>> ds = ds.map_batches(Tokenize, fn_constructor_args=("model.safetensors",),
    ...                     batch_size=64, concurrency=4)  # num_gpus=1, device="cuda" on GPUs
    >>> # adds "codes" ([T, G] int64 per row) and "num_frames"

A row's audio is encoded file bytes (a ``read_binary_files`` row), a ``datasets`` Audio
cell, or an array of samples with its rate in ``rate_column``. Each actor loads the
checkpoint once (its sha256 checked, as any load does) and opens no network; with
``device="cuda"`` and ``num_gpus=1`` it runs on the GPU Ray gave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokquant.integrations.cells import encode_cells


class Tokenize:
    """``map_batches`` callable: built once per actor, called per batch."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        audio_column: str = "audio",
        rate_column: str = "sample_rate",
        device: str = "cpu",
        levels: int | None = None,
        beam: int | None = None,
        batch_frames: int = 1 << 16,
    ) -> None:
        import tokquant

        self.tok = tokquant.load(checkpoint, device)
        self.audio_column, self.rate_column = audio_column, rate_column
        self.levels, self.beam, self.batch_frames = levels, beam, batch_frames

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A batch (``batch_format="numpy"``: column -> array) with ``codes`` and
        ``num_frames`` added; its other columns pass through."""
        import numpy as np

        codes = encode_cells(
            self.tok,
            batch[self.audio_column],
            self.audio_column,
            batch.get(self.rate_column),
            levels=self.levels,
            beam=self.beam,
            batch_frames=self.batch_frames,
        )
        column = np.empty(len(codes), dtype=object)  # rows of different lengths
        for i, c in enumerate(codes):
            column[i] = c.cpu().numpy()
        return {
            **batch,
            "codes": column,
            "num_frames": np.array([c.shape[0] for c in codes], dtype=np.int64),
        }
