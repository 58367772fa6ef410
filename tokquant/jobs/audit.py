"""The audit job's request: do a checkpoint's tokens depend on how they were computed?
The work (and what it compares) is :mod:`tokquant.runners.audit`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import Progress

if TYPE_CHECKING:
    from tokquant.runners.audit import AuditReport


@dataclass
class AuditJob(InputOptions):
    """``tokquant audit``: do the checkpoint's codes for ``inputs`` depend on batching,
    chunking or the device? Writes nothing.

    Example:
        >>> AuditJob("model.safetensors", ["wavs/"]).run().overall()
    """

    checkpoint: str | Path
    inputs: list[str | Path]
    feature_layout: str | None = None
    channels: str = "mix"
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> AuditReport:
        # start-up time: torch
        from tokquant.runners.audit import run_audit

        return run_audit(self, progress)
