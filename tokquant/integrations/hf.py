"""Hugging Face ``datasets.map``: a tokenizer as a batched map function, with the codes
``tokquant encode`` writes for the same audio.

    >>> from tokquant.integrations.hf import tokenize_fn
    >>> ds = ds.map(tokenize_fn("model.safetensors"), batched=True, with_rank=True,
    ...             num_proc=2)   # adds "codes" [T, G] and "num_frames" per row

The audio column holds what the ``Audio`` feature gives: decoded (``{"array",
"sampling_rate"}``) or not (``{"bytes", "path"}``: the bytes are decoded by soundfile, as
the CLI decodes a Parquet cell). Each process loads the checkpoint once (the function
pickles without it), checks its sha256 as any load does, and opens no network.
With ``device="cuda"`` and ``with_rank=True`` process ``rank`` uses GPU
``rank % device_count``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tokquant
from tokquant.integrations.cells import encode_cells
from tokquant.tokenizer import DEFAULT_BATCH_FRAMES


class Tokenize:
    """The map function :func:`tokenize_fn` returns (picklable; the tokenizer is loaded
    on first call in each process)."""

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        audio_column: str = "audio",
        device: str = "cpu",
        levels: int | None = None,
        beam: int | None = None,
        batch_frames: int = DEFAULT_BATCH_FRAMES,
    ) -> None:
        self.checkpoint = str(checkpoint)
        self.audio_column = audio_column
        self.device = device
        self.levels, self.beam, self.batch_frames = levels, beam, batch_frames
        self._tok: Any = None
        self._tok_device: str | None = None
        self._made_in = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tok"], state["_tok_device"] = None, None
        return state

    def _tokenizer(self, rank: int | None) -> Any:
        device = self.device
        if device == "cuda" and rank is not None:
            # start-up time: torch
            import torch

            device = f"cuda:{rank % max(1, torch.cuda.device_count())}"
        if self._tok is None or self._tok_device != device:
            # start-up time: torch
            import torch

            if os.getpid() != self._made_in:
                # a forked worker (num_proc > 1): one thread each, and never the parent's
                # OpenMP pool, which a fork leaves unusable (the first op would hang)
                torch.set_num_threads(1)
            self._tok, self._tok_device = tokquant.load(self.checkpoint, device), device
        return self._tok

    def __call__(self, batch: dict[str, list[Any]], rank: int | None = None) -> dict[str, list]:
        """``batch[audio_column]`` (a batch of ``datasets.map(batched=True)``) -> the
        columns ``codes`` (``[T, G]`` lists) and ``num_frames``."""
        tok = self._tokenizer(rank)
        codes = encode_cells(
            tok,
            batch[self.audio_column],
            self.audio_column,
            levels=self.levels,
            beam=self.beam,
            batch_frames=self.batch_frames,
        )
        return {
            "codes": [c.cpu().tolist() for c in codes],
            "num_frames": [int(c.shape[0]) for c in codes],
        }


def tokenize_fn(checkpoint: str | Path, **options: Any) -> Tokenize:
    """A function for ``datasets.map(fn, batched=True, with_rank=True)`` that adds each
    row's ``codes`` and ``num_frames`` (options: ``audio_column``, ``device``,
    ``levels``, ``beam``, ``batch_frames``)."""
    return Tokenize(checkpoint, **options)
