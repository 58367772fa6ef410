"""The eval job's request and report: tokens decoded to audio and scored against the
audio they were encoded from; the work is :mod:`tokquant.runners.evaluate`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import EvalReport, Progress


@dataclass
class EvalJob(InputOptions):
    """``tokquant eval``: decode ``tokens`` and score them against ``audio`` (the inputs
    they were encoded from, paired by key: the same key, or the one file whose path
    ends in it).

    Example:
        >>> EvalJob("rvq.safetensors", ["tokens/"], ["wavs/"], vocoder="rvq.vocoder.safetensors").run()
    """

    checkpoint: str | Path
    tokens: list[str | Path]
    audio: list[str | Path]
    #: a file from ``train-vocoder`` for this checkpoint, or a Vocos/BigVGAN folder or Hub
    #: id for a checkpoint on its mel (None: Griffin-Lim)
    vocoder: str | Path | None = None
    #: log-mel tokenizers, with ``vocoder``: how far each frame's band energies are moved
    #: toward the tokens' (:func:`~tokquant.decoders.mel.match_mel`; 0: off; None: the
    #: decoder's default, 0.5 for a train-vocoder file and 0 for Vocos/BigVGAN)
    mel_match: float | None = None
    #: a folder for one PNG per file: the original's and the decoded audio's log-mel
    plot: str | Path | None = None
    device: str = "cpu"
    ssl_weights: str | Path | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> EvalReport:
        # start-up time: torch
        from tokquant.runners.evaluate import run_evaluate

        return run_evaluate(self, progress)
