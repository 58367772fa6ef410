"""The decode job's request: token files and corpus utterances -> features (.npy) or
audio (.wav); the work is :mod:`tokquant.runners.decode`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokquant.jobs.report import Progress
from tokquant.jobs.request import Request

if TYPE_CHECKING:
    from tokquant.jobs.report import RunReport


@dataclass
class DecodeJob(Request):
    """``tokquant decode``: token files, folders, lists or corpora -> ``.npy`` features
    (or with ``audio`` wavs: through ``vocoder``, a file from ``train-vocoder``, else
    Griffin-Lim) under ``out``, mirroring their keys.

    Example:
        >>> DecodeJob("model.safetensors", ["tokens/"], "features/").run()
    """

    checkpoint: str | Path
    tokens: list[str | Path]
    out: str | Path
    audio: bool = False
    levels: int | None = None
    overwrite: bool = False
    device: str = "cpu"
    vocoder: str | Path | None = None
    #: log-mel tokenizers, with ``vocoder``: how far each frame's band energies are moved
    #: toward the tokens' (0: the vocoder's output as it is, 1: all the way; None: the
    #: decoder's default, 0.5 for a train-vocoder file and 0 for Vocos/BigVGAN)
    mel_match: float | None = None

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> RunReport:
        # start-up time: torch
        from tokquant.runners.decode import run_decode

        return run_decode(self, progress)
