"""``tokquant encode``: feature or audio files -> token files or a sharded corpus."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._batch import BatchResult, ensure_output_dir, finish, plan_outputs, report
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
    from tokquant.batching import encode_items
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.tokens import SUFFIX
    from tokquant.frontend import channel_count
    from tokquant.inputs import expand_inputs, output_path, split_channels
    from tokquant.pipeline import input_kind, input_suffixes, takes_audio, write_token_file
    from tokquant.sharding import encode_corpus, rank_items, resolve_rank

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    config = ckpt.tokenizer.config
    suffixes = input_suffixes(config)
    items = expand_inputs(inputs, suffixes, input_kind(config))
    if takes_audio(config) and channels is ChannelMode.split:
        items = split_channels(items, channel_count)
    rank, world = resolve_rank(num_shards, shard_index)
    ensure_output_dir(out)
    options = {
        "layout": layout.value if layout else config.features.layout,
        "batch_frames": max(1, batch_frames),
        "workers": max(1, workers),
        "chunk_frames": max(1, round(chunk_seconds * (config.features.frame_rate or 100.0))),
        "levels": levels,
        "beam": beam,
    }
    _check_levels(ckpt.tokenizer, levels, beam)
    result = BatchResult()
    start = time.perf_counter()
    extra: dict[str, object] = {"rank": rank, "world_size": world}
    if shards:
        with ui.progress() as bar:
            task = bar.add_task(
                f"encode r{rank}/{world}", total=len(rank_items(items, rank, world))
            )
            run = encode_corpus(
                ckpt, items, out, suffixes=suffixes, rank=rank, world=world,
                shard_size=shard_size, overwrite=overwrite,
                encode=lambda group: list(encode_items(ckpt, group, **options)),
                on_item=lambda: bar.advance(task),
                levels=levels,
            )  # fmt: skip
        result.done, result.frames, result.failures = run.done, run.frames, run.failures
        extra.update(shards_written=run.written_shards, shards_resumed=run.resumed_shards)
        if world > 1:
            ui.note(f"rank {rank} of {world} done; run `tokquant merge {out}` when all ranks are")
    else:
        plan, result.skipped = plan_outputs(
            rank_items(items, rank, world),
            lambda item: output_path(out, item, suffixes, SUFFIX),
            overwrite=overwrite,
        )
        targets = {id(item): target for item, target in plan}
        # Token files are written (and fsynced) by a background thread while the next
        # batch is read and encoded: writing was the largest per-file cost (profiled).
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokquant-write")
        pending: deque[Future] = deque()

        def settle(block: bool) -> None:
            while pending and (block or pending[0].done()):
                frames = pending.popleft().result()  # a write error (disk full) stops the run
                result.done += 1
                result.frames += frames

        def write(enc) -> int:
            write_token_file(ckpt, targets[id(enc.item)], enc.codes,
                             source=str(enc.item.path), channel=enc.item.channel)  # fmt: skip
            return int(enc.codes.shape[0])

        try:
            with ui.progress() as bar:
                task = bar.add_task("encode", total=len(plan))
                for enc in encode_items(ckpt, [item for item, _ in plan], **options):
                    if enc.error is not None:
                        result.failures.append(enc.error)
                        bar.advance(task)
                        continue
                    pending.append(writer.submit(write, enc))
                    pending[-1].add_done_callback(lambda _: bar.advance(task))
                    settle(block=len(pending) > 64)  # bound the codes held in memory
                settle(block=True)
        finally:
            writer.shutdown(wait=True, cancel_futures=True)
    result.seconds = time.perf_counter() - start
    report(ui, result)

    _, cards = ckpt.tokenizer.columns(levels)
    finish(
        ui,
        result,
        "encode",
        json_out=json_out,
        extra=extra,
        extra_columns={
            "tokens": result.frames * len(cards),
            "bits_per_frame": sum((c - 1).bit_length() for c in cards),
        },
    )


def _check_levels(tokenizer, levels: int | None, beam: int) -> None:
    """--levels/--beam are RVQ options with ranges; say so in one line."""
    from tokquant.errors import InputError

    rvq = tokenizer.config.quantizer.family == "rvq"
    if (levels is not None or beam != 1) and not rvq:
        raise InputError("--levels and --beam apply to RVQ checkpoints only")
    if levels is not None and not 1 <= levels <= len(tokenizer.column_cardinalities):
        raise InputError(
            f"--levels must be in [1, {len(tokenizer.column_cardinalities)}], found {levels}"
        )
    if beam < 1:
        raise InputError(f"--beam must be >= 1, found {beam}")
    if beam > 1 and not tokenizer.quantizer.plain:
        raise InputError("--beam needs plain RVQ levels (this checkpoint projects or normalises)")
