"""``tokquant decode``: token files -> feature files (.npy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    CheckpointPath,
    Device,
    JsonOut,
    MelMatch,
    OutDir,
    Overwrite,
    Quiet,
    Threads,
    TokenInputs,
)
from tokquant.cli._output import Output
from tokquant.jobs.decode import DecodeJob

AudioOption = Annotated[
    bool,
    typer.Option(
        "--audio",
        metavar="",
        help="Write .wav instead of .npy features: through --vocoder, else Griffin-Lim "
        "(logmel/fbank front ends; an approximate inversion, for listening checks).",
    ),
]
LevelsOption = Annotated[int | None, typer.Option(help="RVQ: decode with the first N levels only.")]

VocoderOption = Annotated[
    Path | None,
    typer.Option(
        help="With --audio: a vocoder from `tokquant train-vocoder` for this checkpoint, or a "
        "Vocos/BigVGAN folder or Hub id for a checkpoint on its mel "
        "(configs/logmel-vocos-*, logmel-bigvgan-*). Default: Griffin-Lim (log-mel, fbank)."
    ),
]


def decode(
    checkpoint: CheckpointPath,
    tokens: TokenInputs,
    out: OutDir,
    audio: AudioOption = DecodeJob.audio,
    levels: LevelsOption = DecodeJob.levels,
    overwrite: Overwrite = DecodeJob.overwrite,
    device: Device = DecodeJob.device,
    vocoder: VocoderOption = DecodeJob.vocoder,
    mel_match: MelMatch = DecodeJob.mel_match,
    threads: Threads = DecodeJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Decode token files back into features (.npy files of frames x dim) or audio."""
    job = DecodeJob(
        checkpoint,
        tokens,
        out,
        audio=audio,
        levels=levels,
        overwrite=overwrite,
        device=device,
        vocoder=vocoder,
        mel_match=mel_match,
        threads=threads,
    )
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    ui.summary(report, "decode", json_out=json_out)
