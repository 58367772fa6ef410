"""The encode job's request: :class:`EncodeJob` (its outputs: :mod:`.encode_outputs`;
on Ray: :mod:`.ray_encode`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.choices import ENGINES
from tokquant.errors import InputError
from tokquant.jobs.batcher import DEFAULT_BATCH_FRAMES
from tokquant.jobs.encode_outputs import (
    EncodeOptions,
    bits_per_frame,
    to_corpus,
    to_files,
)
from tokquant.jobs.load import InputOptions
from tokquant.jobs.ranks import rank_items
from tokquant.jobs.report import Progress, RunReport
from tokquant.sources import Source
from tokquant.tokenizer.model import Tokenizer


@dataclass
class EncodeJob(InputOptions):
    """``tokquant encode``: inputs -> token files under ``out``, or with ``shards`` this
    rank's share of a sharded corpus (resumable). Defaults are the CLI's.

    Example:
        >>> EncodeJob("model.safetensors", ["wavs/"], "tokens/", shards=True).run()
    """

    checkpoint: str | Path
    inputs: list[str | Path]
    out: str | Path
    shards: bool = False
    shard_size: int = 1000
    #: ranks: None takes torchrun's or SLURM's environment, else one rank
    num_shards: int | None = None
    shard_index: int | None = None
    levels: int | None = None
    beam: int | None = None
    feature_layout: str | None = None
    channels: str = "mix"
    batch_frames: int = DEFAULT_BATCH_FRAMES
    workers: int = 2
    chunk_seconds: float = 30.0
    overwrite: bool = False
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: ``"local"`` (this process, or this rank of a torchrun/SLURM run) or ``"ray"``:
    #: the whole corpus on a Ray cluster (:mod:`tokquant.jobs.ray_encode`)
    engine: str = "local"
    #: ``engine="ray"``: the cluster to join (None: the one this process has joined, else
    #: ``RAY_ADDRESS``, else a new local one)
    ray_address: str | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> RunReport:
        """Encode; the report's ``columns`` hold the tokens written and bits per frame,
        its ``extra`` the rank (and with ``shards`` the shards written and resumed)."""
        from tokquant.devices import use_threads
        from tokquant.jobs.load import open_tokenizer
        from tokquant.jobs.ranks import resolve_rank
        from tokquant.storage.folder import OutputFolder

        use_threads(self.threads)
        if self.engine not in ENGINES:
            raise InputError(f"`engine` must be one of {', '.join(ENGINES)}, found {self.engine!r}")
        if self.engine == "ray":
            from tokquant.jobs.ray_encode import encode_on_ray

            return encode_on_ray(self, progress)
        tok = open_tokenizer(self.checkpoint, self.device, self.ssl_weights)
        items = self.sources(tok)
        rank, world = resolve_rank(self.num_shards, self.shard_index)
        out = Path(self.out)
        OutputFolder(out).create()
        options = self.options(tok)
        if self.shards:
            report = to_corpus(
                tok,
                items,
                out,
                options,
                rank=rank,
                world=world,
                shard_size=self.shard_size,
                progress=progress,
            )
        else:
            report = to_files(tok, rank_items(items, rank, world), out, options, progress)
        report.extra = {"rank": rank, "world_size": world, **report.extra}
        self.add_columns(tok, report)
        return report

    def sources(self, tok: Tokenizer) -> list[Source]:
        """Every input, in the order every rank (and every Ray task) agrees on."""
        from tokquant.sources import sources_for

        return sources_for(
            tok.config,
            [Path(p) for p in self.inputs],
            channels=self.channels,
            options=self.source_options(),
        )

    def options(self, tok: Tokenizer) -> EncodeOptions:
        """How to encode, checked against the checkpoint."""
        options = EncodeOptions(
            layout=self.feature_layout,
            batch_frames=self.batch_frames,
            workers=self.workers,
            chunk_seconds=self.chunk_seconds,
            levels=self.levels,
            beam=self.beam,
            overwrite=self.overwrite,
            channels=self.channels,
        )
        options.check(tok)
        return options

    def add_columns(self, tok: Tokenizer, report: RunReport) -> None:
        columns, bits = bits_per_frame(tok, self.levels)
        report.columns = {"tokens": report.frames * columns, "bits_per_frame": bits}
