"""``tokquant train``: fit a tokenizer from a config on feature files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    INPUTS_HELP,
    AudioColumn,
    AudioMember,
    ChannelMode,
    Channels,
    Device,
    JsonOut,
    KeyColumn,
    Layout,
    Overwrite,
    Quiet,
    Segments,
)
from tokquant.cli._output import Output

Interpolate = Annotated[float | None, typer.Option(help="Override train.interpolate (0 to 1).")]
MaxFrames = Annotated[
    int | None,
    typer.Option(
        help="Train on a uniform sample of this many frames across all inputs, drawn while "
        "reading: memory grows with N, not with the corpus (twice N frames with "
        "train.interpolate, which keeps each one's next frame)."
    ),
]


def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Config YAML (see configs/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors).")],
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help=INPUTS_HELP + " Repeatable."),
    ] = None,
    more_data: Annotated[
        list[Path] | None, typer.Argument(help="More data paths (so --data a b c works).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    batch_frames: Annotated[int | None, typer.Option(help="Override train.batch_frames.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override train.lr.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    interpolate: Interpolate = None,
    max_frames: MaxFrames = None,
    layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a tokenizer (front end, normalisation, projections, quantizer); write a checkpoint.

    Under torchrun (WORLD_SIZE > 1) the ranks split every batch and rank 0 writes the
    checkpoint; the result equals one process training on the whole batch.
    """
    from tokquant.jobs import TrainJob

    ui = Output(json_mode=json_out, quiet=quiet or json_out or _other_rank())
    job = TrainJob(
        config, [*(data or []), *(more_data or [])], out, steps=steps, batch_frames=batch_frames,
        lr=lr, seed=seed, interpolate=interpolate, max_frames=max_frames,
        feature_layout=layout.value if layout else None, channels=channels.value,
        overwrite=overwrite, device=device, audio_column=audio_column, key_column=key_column,
        audio_member=audio_member, segments=segments,
    )  # fmt: skip
    with ui.tracker(with_metrics=True) as progress:
        report = job.run(progress)
    for warning in report.warnings:
        ui.warn(warning)
    if report.rank == 0:
        _print_summary(ui, report.summary, json_out)
    report.end_process()


def _print_summary(ui: Output, summary: dict, json_out: bool) -> None:
    if json_out:
        ui.json(summary)
        return
    rows = [
        [k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else v] for k, v in summary.items()
    ]
    ui.table("train", ["", "value"], rows, numeric=False)


def _other_rank() -> bool:
    """A torchrun rank other than 0: it prints nothing but errors (the job joins the
    group itself; this is only who speaks)."""
    env = os.environ
    return env.get("WORLD_SIZE", "1") not in ("", "0", "1") and env.get("RANK", "0") not in (
        "",
        "0",
    )
