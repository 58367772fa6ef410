"""``tokquant encode``: feature or audio files -> token files, mirroring the input tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._batch import run_per_file
from tokquant.cli._options import (
    ChannelMode,
    Channels,
    Checkpoint,
    Device,
    JsonOut,
    Layout,
    OutDir,
    Overwrite,
    Quiet,
)
from tokquant.cli._output import Output


def encode(
    checkpoint: Checkpoint,
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Feature/audio files, folders (searched recursively) or list files."),
    ],
    out: OutDir,
    layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    chunk_seconds: Annotated[
        float, typer.Option(help="Audio is streamed in chunks of this length (memory bound).")
    ] = 30.0,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode feature or audio files into token files (one per input, or per channel)."""
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.tokens import SUFFIX
    from tokquant.frontend import channel_count
    from tokquant.inputs import expand_inputs, output_path, split_channels
    from tokquant.pipeline import encode_file, input_kind, input_suffixes, takes_audio

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    config = ckpt.tokenizer.config
    suffixes = input_suffixes(config)
    items = expand_inputs(inputs, suffixes, input_kind(config))
    if takes_audio(config) and channels is ChannelMode.split:
        items = split_channels(items, channel_count)
    file_layout = layout.value if layout else config.features.layout
    chunk_frames = max(1, round(chunk_seconds * (config.features.frame_rate or 100.0)))
    result = run_per_file(
        ui,
        "encode",
        items,
        lambda item: output_path(out, item, suffixes, SUFFIX),
        lambda item, target: len(
            encode_file(
                ckpt,
                item.path,
                target,
                layout=file_layout,
                channel=item.channel,
                chunk_frames=chunk_frames,
            )  # fmt: skip
        ),
        overwrite=overwrite,
    )
    cards = ckpt.tokenizer.column_cardinalities
    bits = sum((c - 1).bit_length() for c in cards)
    summary = {
        "files_encoded": result.done,
        "files_skipped": result.skipped,
        "files_failed": len(result.failures),
        "frames": result.frames,
        "tokens": result.frames * len(cards),
        "bits_per_frame": bits,
        "seconds": round(result.seconds, 3),
        "failures": result.failures,
    }
    if json_out:
        ui.json(summary)
    else:
        ui.table(
            "encode",
            ["files", "skipped", "failed", "frames", "tokens", "bits/frame", "time"],
            [[result.done, result.skipped, len(result.failures), result.frames,
              summary["tokens"], bits, f"{result.seconds:.2f}s"]],
        )  # fmt: skip
    if result.failures:
        raise typer.Exit(1)
