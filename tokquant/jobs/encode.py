"""The encode job's request: :class:`EncodeJob`, which builds the plan
(:class:`~tokquant.engines.plan.EncodePlan`) an engine runs (:mod:`tokquant.engines`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tokquant.engines.plan import EncodeOptions, EncodePlan
from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import EncodeReport, Progress


@dataclass
class EncodeJob(InputOptions, EncodeOptions):
    """``tokquant encode``: inputs -> token files under ``out``, or with ``shards`` this
    rank's share of a sharded corpus (resumable); how to encode is
    :class:`~tokquant.engines.plan.EncodeOptions`'s fields (``levels``, ``beam``,
    ``feature_layout``, ``channels``, ``batch_frames``, ``workers``, ``chunk_seconds``,
    ``overwrite``).

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
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(EncodeOptions)}
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
            # start-up time: the Ray engine's helpers; Ray itself only once it runs
            from tokquant.engines import ray

            return ray.run(self.plan(), progress, self.ray_address)
        from tokquant.engines import local  # start-up time: torch

        return local.run(self.plan(), progress)
