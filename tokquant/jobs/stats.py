"""The stats job's request: codebook usage over token sources, and reconstruction error
against the encoded inputs (``features``); the work is :mod:`tokquant.runners.stats`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import Progress

if TYPE_CHECKING:
    from tokquant.runners.stats import StatsReport


@dataclass
class StatsJob(InputOptions):
    """``tokquant stats``: codebook usage of token files, folders, lists or corpora, and
    with ``features`` (the encoded inputs) the reconstruction error.

    Example:
        >>> report = StatsJob("model.safetensors", ["tokens/"], features=["wavs/"]).run()
        >>> [c.usage for c in report.columns]
    """

    checkpoint: str | Path
    tokens: list[str | Path]
    features: list[str | Path] | None = None
    top: int = 5
    #: a PNG of each column's usage histogram (needs matplotlib)
    plot: str | Path | None = None
    feature_layout: str | None = None
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> StatsReport:
        # start-up time: torch
        from tokquant.runners.stats import run_stats

        return run_stats(self, progress)
