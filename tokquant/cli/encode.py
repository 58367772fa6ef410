"""``tokquant encode``: feature or audio files -> token files or a sharded corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    shards: Annotated[
        bool,
        typer.Option(
            "--shards", help="Write a corpus (shards + manifest) instead of one file per input."
        ),
    ] = False,
    shard_size: Annotated[int, typer.Option(help="Utterances per shard (with --shards).")] = 1000,
    num_shards: Annotated[
        int | None,
        typer.Option(
            help="Split the inputs over this many ranks (default: torchrun/SLURM env, else 1)."
        ),
    ] = None,
    shard_index: Annotated[int | None, typer.Option(help="This rank, in [0, num-shards).")] = None,
    levels: Annotated[
        int | None, typer.Option(help="RVQ: keep the first N levels (a lower bitrate).")
    ] = None,
    beam: Annotated[
        int, typer.Option(help="RVQ: beam search width (1 = greedy; larger = lower error).")
    ] = 1,
    layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    batch_frames: Annotated[
        int, typer.Option(help="Frames per device batch (several files packed).")
    ] = 65536,
    workers: Annotated[int, typer.Option(help="Background threads reading inputs.")] = 2,
    chunk_seconds: Annotated[
        float, typer.Option(help="Long audio is streamed in chunks of this length (memory bound).")
    ] = 30.0,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode feature or audio files into token files (one per input), or into a corpus.

    Running it again skips what is done: existing token files, or finished shards of a
    corpus (a killed run resumes where it stopped, with the same bytes in the end).
    """
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.jobs import encode as job
    from tokquant.jobs.ranks import rank_items, resolve_rank
    from tokquant.jobs.sources import expand_for
    from tokquant.jobs.targets import ensure_output_dir

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    config = ckpt.tokenizer.config
    items = expand_for(config, inputs, split=channels is ChannelMode.split)
    rank, world = resolve_rank(num_shards, shard_index)
    ensure_output_dir(out)
    options = job.EncodeOptions(
        layout=layout.value if layout else config.features.layout, batch_frames=batch_frames,
        workers=workers, chunk_seconds=chunk_seconds, levels=levels, beam=beam,
        overwrite=overwrite,
    )  # fmt: skip
    options.check(ckpt.tokenizer)
    with ui.tracker() as progress:
        if shards:
            report = job.to_corpus(ckpt, items, out, options, rank=rank, world=world,
                                   shard_size=shard_size, progress=progress)  # fmt: skip
        else:
            report = job.to_files(ckpt, rank_items(items, rank, world), out, options,
                                  progress=progress)  # fmt: skip
    if shards and world > 1:
        ui.note(f"rank {rank} of {world} done; run `tokquant merge {out}` when all ranks are")
    report.extra = {"rank": rank, "world_size": world, **report.extra}
    columns, bits = job.bits_per_frame(ckpt, levels)
    ui.summary(report, "encode", json_out=json_out,
               columns={"tokens": report.frames * columns, "bits_per_frame": bits})  # fmt: skip
