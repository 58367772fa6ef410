"""The encode job's request: :class:`EncodeJob`, which builds the plan
(:class:`~tokquant.engines.plan.EncodePlan`) an engine runs (:mod:`tokquant.engines`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.engines.plan import DEFAULT_BATCH_FRAMES, EncodeOptions, EncodePlan
from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import EncodeReport, Progress


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
    #: the whole corpus on a Ray cluster (:mod:`tokquant.engines.ray`)
    engine: str = "local"
    #: ``engine="ray"``: the cluster to join (None: the one this process has joined, else
    #: ``RAY_ADDRESS``, else a new local one)
    ray_address: str | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def plan(self) -> EncodePlan:
        """What to encode, how and where: what an engine runs."""
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
        return EncodePlan(
            checkpoint=Path(self.checkpoint),
            inputs=tuple(Path(p) for p in self.inputs),
            out=Path(self.out),
            options=options,
            source_options=self.source_options(),
            shards=self.shards,
            shard_size=self.shard_size,
            num_shards=self.num_shards,
            shard_index=self.shard_index,
            device=self.device,
            ssl_weights=None if self.ssl_weights is None else Path(self.ssl_weights),
        )

    def run(self, progress: Progress | None = None) -> EncodeReport:
        """Encode on this job's engine; the report's ``columns`` hold the tokens written
        and bits per frame."""
        from tokquant.devices import use_threads  # start-up time: torch

        use_threads(self.threads)
        if self.engine == "ray":
            from tokquant.engines import ray  # start-up time: torch, and Ray when run

            return ray.run(self.plan(), progress, self.ray_address)
        from tokquant.engines import local  # start-up time: torch

        return local.run(self.plan(), progress)
