"""``tokquant train-vocoder``: a waveform decoder for a tokenizer's tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    ChannelMode,
    Channels,
    CheckpointPath,
    DataOption,
    Device,
    JsonOut,
    KeyColumn,
    MoreDataOption,
    Overwrite,
    Quiet,
    Segments,
    SslWeights,
    Threads,
)
from tokquant.cli._output import run_training
from tokquant.jobs.train_vocoder import TrainVocoderJob

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Vocoder to write (.safetensors).")]
StepsOption = Annotated[int, typer.Option(help="Training steps.")]
BatchOption = Annotated[int, typer.Option(help="Segments per step.")]
SegmentFramesOption = Annotated[int, typer.Option(help="Frames per training segment.")]
LrOption = Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")]
SeedOption = Annotated[int, typer.Option(help="Seed of the segment draws and the weights.")]
SpeedsOption = Annotated[
    list[float],
    typer.Option(
        "--speed",
        metavar="FACTOR",
        help="Speed perturbation: train on each input also at this speed (pitch moves too). "
        "Repeatable; --speed 1 alone trains on the inputs as recorded.",
    ),
]
AdversarialOption = Annotated[
    bool,
    typer.Option(
        "--adversarial",
        metavar="",
        help="Add multi-period and multi-resolution discriminators (for long GPU runs).",
    ),
]


def train_vocoder(
    checkpoint: CheckpointPath,
    out: OutOption,
    data: DataOption = None,
    more_data: MoreDataOption = None,
    steps: StepsOption = TrainVocoderJob.steps,
    batch: BatchOption = TrainVocoderJob.batch,
    segment_frames: SegmentFramesOption = TrainVocoderJob.segment_frames,
    lr: LrOption = TrainVocoderJob.lr,
    seed: SeedOption = TrainVocoderJob.seed,
    adversarial: AdversarialOption = TrainVocoderJob.adversarial,
    speeds: SpeedsOption = TrainVocoderJob.speeds,
    channels: Channels = ChannelMode(TrainVocoderJob.channels),
    device: Device = TrainVocoderJob.device,
    ssl_weights: SslWeights = TrainVocoderJob.ssl_weights,
    overwrite: Overwrite = TrainVocoderJob.overwrite,
    audio_column: AudioColumn = TrainVocoderJob.audio_column,
    key_column: KeyColumn = TrainVocoderJob.key_column,
    audio_member: AudioMember = TrainVocoderJob.audio_member,
    segments: Segments = TrainVocoderJob.segments,
    threads: Threads = TrainVocoderJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a decoder from CHECKPOINT's tokens to audio, on what decode gives it (the
    decoded features of --data), and write it to --out (a .safetensors file).

    Running it again after a stop continues from its last saved state (OUT.state);
    --overwrite starts over.
    """
    job = TrainVocoderJob(
        checkpoint,
        [*(data or []), *(more_data or [])],
        out,
        steps=steps,
        batch=batch,
        segment_frames=segment_frames,
        lr=lr,
        seed=seed,
        adversarial=adversarial,
        speeds=speeds,
        channels=channels.value,
        device=device,
        ssl_weights=ssl_weights,
        overwrite=overwrite,
        audio_column=audio_column,
        key_column=key_column,
        audio_member=audio_member,
        segments=segments,
        threads=threads,
    )
    run_training(job, "train-vocoder", json_out=json_out, quiet=quiet)
