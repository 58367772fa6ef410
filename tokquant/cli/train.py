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
from tokquant.cli._request import request

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
    steps: StepsOption = None,
    batch_frames: BatchFramesOption = None,
    lr: LrOption = None,
    seed: SeedOption = None,
    interpolate: Interpolate = None,
    max_frames: MaxFrames = None,
    feature_layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    threads: Threads = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a tokenizer (front end, normalisation, projections, quantizer); write a checkpoint.

    Under torchrun (WORLD_SIZE > 1) the ranks split every batch and rank 0 writes the
    checkpoint; the result equals one process training on the whole batch.
    """
    from tokquant.jobs import TrainJob

    job = request(TrainJob, locals(), data=[*(data or []), *(more_data or [])])
    run_training(job, "train", json_out=json_out, quiet=quiet)
