"""``tokquant train``: fit a tokenizer from a config on feature files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    ChannelMode,
    Channels,
    DataOption,
    Device,
    JsonOut,
    KeyColumn,
    Layout,
    MoreDataOption,
    Overwrite,
    Quiet,
    Segments,
    Threads,
)
from tokquant.cli._output import run_training
from tokquant.jobs.train import TrainJob

Interpolate = Annotated[float | None, typer.Option(help="Override train.interpolate (0 to 1).")]
MaxFrames = Annotated[
    int | None,
    typer.Option(
        help="Train on a uniform sample of this many frames across all inputs, drawn while "
        "reading: memory grows with N, not with the corpus (twice N frames with "
        "train.interpolate, which keeps each one's next frame)."
    ),
]


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Config YAML (see configs/).")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors).")]
StepsOption = Annotated[int | None, typer.Option(help="Override train.steps.")]
BatchFramesOption = Annotated[int | None, typer.Option(help="Override train.batch_frames.")]
LrOption = Annotated[float | None, typer.Option(help="Override train.lr.")]
SeedOption = Annotated[int | None, typer.Option(help="Override train.seed.")]


def train(
    config: ConfigOption,
    out: OutOption,
    data: DataOption = None,
    more_data: MoreDataOption = None,
    steps: StepsOption = TrainJob.steps,
    batch_frames: BatchFramesOption = TrainJob.batch_frames,
    lr: LrOption = TrainJob.lr,
    seed: SeedOption = TrainJob.seed,
    interpolate: Interpolate = TrainJob.interpolate,
    max_frames: MaxFrames = TrainJob.max_frames,
    feature_layout: Layout = TrainJob.feature_layout,
    channels: Channels = ChannelMode(TrainJob.channels),
    overwrite: Overwrite = TrainJob.overwrite,
    device: Device = TrainJob.device,
    audio_column: AudioColumn = TrainJob.audio_column,
    key_column: KeyColumn = TrainJob.key_column,
    audio_member: AudioMember = TrainJob.audio_member,
    segments: Segments = TrainJob.segments,
    threads: Threads = TrainJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a tokenizer (front end, normalisation, projections, quantizer); write a checkpoint.

    Under torchrun (WORLD_SIZE > 1) the ranks split every batch and rank 0 writes the
    checkpoint; the result equals one process training on the whole batch.
    """
    job = TrainJob(
        config,
        [*(data or []), *(more_data or [])],
        out,
        steps=steps,
        batch_frames=batch_frames,
        lr=lr,
        seed=seed,
        interpolate=interpolate,
        max_frames=max_frames,
        feature_layout=None if feature_layout is None else feature_layout.value,
        channels=channels.value,
        overwrite=overwrite,
        device=device,
        audio_column=audio_column,
        key_column=key_column,
        audio_member=audio_member,
        segments=segments,
        threads=threads,
    )
    run_training(job, "train", json_out=json_out, quiet=quiet)
