"""The compare job's request: several tokenizers, each with its decoder, scored on the
same reference audio in one run; the work is :mod:`tokquant.runners.compare`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokquant.jobs.load import InputOptions
from tokquant.jobs.report import CompareReport, Progress


@dataclass
class CompareJob(InputOptions):
    """``tokquant compare``: encode ``audio`` with every tokenizer, decode it through its
    decoder, and score each as ``eval`` does (the same numbers, file by file), plus the
    encode and decode speeds, in one table; with ``html`` a listening page in ``out``.

    Example:
        >>> CompareJob(["wavs/"], ["rvq.safetensors", "dac.safetensors"], "cmp/", html=True).run()
    """

    audio: list[str | Path]
    tokenizers: list[str | Path]
    out: str | Path
    #: one per tokenizer, in order: a vocoder as ``eval`` takes it, or "default" (its
    #: own: a codec's decoder, else Griffin-Lim); None: the default for every one
    vocoders: list[str] | None = None
    #: write ``out/index.html``: players, log-mel images, usage plots (needs matplotlib)
    html: bool = False
    device: str = "cpu"
    ssl_weights: str | Path | None = None
    overwrite: bool = False

    #: CPU threads for torch (None: OMP_NUM_THREADS if set, else the CPUs this process
    #: may use: affinity, SLURM_CPUS_PER_TASK, cgroup quota)
    threads: int | None = None

    def run(self, progress: Progress | None = None) -> CompareReport:
        # start-up time: the request is read by the CLI, which starts without torch
        from tokquant.runners.compare import run_compare

        return run_compare(self, progress)
