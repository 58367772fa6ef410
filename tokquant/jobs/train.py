"""The train job's request: fit the tokenizer a config describes; the work is
:mod:`tokquant.runners.train`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import Progress, TrainReport


@dataclass
class TrainJob(InputOptions):
    """``tokquant train``: fit the tokenizer ``config`` describes on ``data`` and write
    the checkpoint ``out``. ``None`` overrides keep the config's ``train.*`` values.

    Example:
        >>> TrainJob("configs/logmel-rvq-8x1024.yaml", ["wavs/"], "rvq.safetensors").run()
    """

    config: str | Path
    data: list[str | Path]
    out: str | Path
    steps: int | None = None
    batch_frames: int | None = None
    lr: float | None = None
    seed: int | None = None
    interpolate: float | None = None
    max_frames: int | None = None
    feature_layout: str | None = None
    channels: str = "mix"
    overwrite: bool = False
    device: str = "cpu"

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> TrainReport:
        # start-up time: the request is read by the CLI, which starts without torch
        from tokquant.runners.train import run_train

        return run_train(self, progress)
