"""The train-vocoder job's request: a decoder from a checkpoint's tokens to audio, its
recipe :class:`~tokquant.decoders.trained.recipe.VocoderRecipe`; the work is
:mod:`tokquant.runners.train_vocoder`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.decoders.trained.recipe import VocoderRecipe
from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import Progress, TrainReport


@dataclass
class TrainVocoderJob(InputOptions, VocoderRecipe):
    """``tokquant train-vocoder``: a decoder from ``checkpoint``'s tokens to audio,
    trained on ``data``, written to ``out``; the recipe is
    :class:`~tokquant.decoders.trained.recipe.VocoderRecipe`'s fields, its defaults the
    shipped decoder's.

    Example:
        >>> TrainVocoderJob("rvq.safetensors", ["wavs/"], "rvq.vocoder.safetensors").run()
    """

    checkpoint: str | Path
    data: list[str | Path]
    out: str | Path
    channels: str = "mix"
    device: str = "cpu"
    ssl_weights: str | Path | None = None
    overwrite: bool = False

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> TrainReport:
        # start-up time: the request is read by the CLI, which starts without torch
        from tokquant.runners.train_vocoder import run_train_vocoder

        return run_train_vocoder(self, progress)
