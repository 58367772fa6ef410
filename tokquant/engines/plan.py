"""An encode as a plan that an engine runs: what to read, how to encode it, where the
codes go. :class:`~tokquant.jobs.EncodeJob` builds one; :mod:`.local` (this process, or
this rank of a torchrun/SLURM run) and :mod:`.ray` (a Ray cluster) run it. Neither
engine knows the job: the plan is all they are given (and all a Ray actor is sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant.errors import InputError
from tokquant.tokenizer import DEFAULT_BATCH_FRAMES

if TYPE_CHECKING:
    from tokquant.sources import Source, SourceOptions
    from tokquant.tokenizer.model import Tokenizer


@dataclass(kw_only=True)
class EncodeOptions:
    """How to encode: the one place of these options and their defaults (the encode
    request extends it, the CLI takes its defaults from there)."""

    #: Feature files' layout (None: the checkpoint's)
    feature_layout: str | None = None
    batch_frames: int = DEFAULT_BATCH_FRAMES
    workers: int = 2
    chunk_seconds: float = 30.0
    levels: int | None = None
    #: None: the checkpoint's (the beam an RVQ was trained for; greedy otherwise)
    beam: int | None = None
    overwrite: bool = False
    #: How multi-channel audio became inputs (recorded with the outputs: a run with
    #: ``split`` and one with ``mix`` are different runs)
    channels: str = "mix"

    def check(self, tokenizer: Tokenizer) -> None:
        """``levels``/``beam`` are for quantizers that support them, within range."""
        quantizer = tokenizer.quantizer
        if (
            self.levels is not None or self.beam not in (None, 1)
        ) and not quantizer.supports_levels:
            raise InputError("`levels` and `beam` apply to RVQ checkpoints only")
        columns = len(tokenizer.column_cardinalities)
        if self.levels is not None and not 1 <= self.levels <= columns:
            raise InputError(f"`levels` must be in [1, {columns}], found {self.levels}")
        if self.beam is not None and self.beam < 1:
            raise InputError(f"`beam` must be >= 1, found {self.beam}")
        if self.beam is not None and self.beam > 1 and not quantizer.supports_beam:
            raise InputError(
                "`beam` needs plain RVQ levels (this checkpoint projects or normalises)"
            )

    def batch_arguments(self, tok: Tokenizer) -> dict[str, Any]:
        rate = tok.config.features.frame_rate or 100.0
        return {
            "layout": self.feature_layout,
            "batch_frames": max(1, self.batch_frames),
            "workers": max(1, self.workers),
            "chunk_frames": max(1, round(self.chunk_seconds * rate)),
            "levels": self.levels,
            "beam": self.beam,
        }


@dataclass(frozen=True)
class EncodePlan:
    """Inputs (``inputs``, read through ``source_options``), the checkpoint that encodes
    them, how (``options``) and where (``out``: token files, or with ``shards`` a
    corpus of ``shard_size`` utterances per shard, ``num_shards``/``shard_index`` ranks)."""

    checkpoint: Path
    inputs: tuple[Path, ...]
    out: Path
    options: EncodeOptions = field(default_factory=EncodeOptions)
    source_options: SourceOptions | None = None
    shards: bool = False
    shard_size: int = 1000
    num_shards: int | None = None
    shard_index: int | None = None
    device: str = "cpu"
    ssl_weights: Path | None = None

    def tokenizer(self, device: str | None = None) -> Tokenizer:
        from tokquant.api import open_tokenizer  # start-up time: the model imports torch

        return open_tokenizer(self.checkpoint, device or self.device, self.ssl_weights)

    def units(self, tok: Tokenizer) -> list[Source]:
        """Every input, in the order every rank (and every Ray task) agrees on."""
        from tokquant.sources import sources_for  # start-up time: readers import numpy

        return sources_for(
            tok.config, list(self.inputs), channels=self.options.channels,
            options=self.source_options,
        )  # fmt: skip

    def checked_options(self, tok: Tokenizer) -> EncodeOptions:
        """The options, checked against the checkpoint (every check a task would make)."""
        self.options.check(tok)
        return self.options

    def columns(self, tok: Tokenizer, frames: int) -> dict[str, Any]:
        """What a report adds to its table: tokens written and bits per frame."""
        _, cards = tok.columns(self.options.levels)
        return {"tokens": frames * len(cards),
                "bits_per_frame": sum((c - 1).bit_length() for c in cards)}  # fmt: skip


def refuse_ranks_on_ray(plan: EncodePlan) -> None:
    if not plan.shards:
        raise InputError("`engine='ray'` writes a sharded corpus: set `shards`")
    if plan.num_shards is not None or plan.shard_index is not None:
        raise InputError(
            "`engine='ray'` runs every rank itself: leave `num_shards` and `shard_index` unset"
        )
