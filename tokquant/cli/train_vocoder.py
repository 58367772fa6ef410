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
from tokquant.cli._request import request

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
    steps: StepsOption = 6000,
    batch: BatchOption = 16,
    segment_frames: SegmentFramesOption = 32,
    lr: LrOption = 2e-3,
    seed: SeedOption = 0,
    adversarial: AdversarialOption = False,
    speeds: SpeedsOption = [0.85, 0.92, 1.0, 1.08, 1.16],  # noqa: B006
    channels: Channels = ChannelMode.mix,
    device: Device = "cpu",
    ssl_weights: SslWeights = None,
    overwrite: Overwrite = False,
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    threads: Threads = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a decoder from CHECKPOINT's tokens to audio, on what decode gives it (the
    decoded features of --data), and write it to --out (a .safetensors file).

    Running it again after a stop continues from its last saved state (OUT.state);
    --overwrite starts over.
    """
    from tokquant.jobs import TrainVocoderJob

    job = request(TrainVocoderJob, locals(), data=[*(data or []), *(more_data or [])])
    run_training(job, "train-vocoder", json_out=json_out, quiet=quiet)
