"""``tokquant encode``: feature or audio files -> token files or a sharded corpus."""

from __future__ import annotations

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    BatchFrames,
    Beam,
    ChannelMode,
    Channels,
    CheckpointPath,
    ChunkSeconds,
    Device,
    EncodeLevels,
    Inputs,
    JsonOut,
    KeyColumn,
    Layout,
    NumShards,
    OutDir,
    Overwrite,
    Quiet,
    Segments,
    ShardIndex,
    Shards,
    ShardSize,
    SslWeights,
    Workers,
    source_options,
    start,
)


def encode(
    checkpoint: CheckpointPath,
    inputs: Inputs,
    out: OutDir,
    shards: Shards = False,
    shard_size: ShardSize = 1000,
    num_shards: NumShards = None,
    shard_index: ShardIndex = None,
    levels: EncodeLevels = None,
    beam: Beam = None,
    layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    batch_frames: BatchFrames = 65536,
    workers: Workers = 2,
    chunk_seconds: ChunkSeconds = 30.0,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    ssl_weights: SslWeights = None,
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode audio or features (files or where corpora live) into token files, or a corpus.

    Running it again skips what is done: existing token files, or finished shards of a
    corpus (a killed run resumes where it stopped, with the same bytes in the end).
    """
    from tokquant.jobs import encode as job
    from tokquant.jobs.ranks import rank_items, resolve_rank
    from tokquant.jobs.targets import ensure_output_dir
    from tokquant.sources import sources_for

    ui, tok = start(checkpoint, device, json_out=json_out, quiet=quiet,
                     ssl_weights=ssl_weights)  # fmt: skip
    where = source_options(audio_column, key_column, audio_member, segments)
    items = sources_for(tok.config, inputs, channels=channels.value, options=where)
    rank, world = resolve_rank(num_shards, shard_index)
    ensure_output_dir(out)
    options = job.EncodeOptions(
        layout=layout.value if layout else None, batch_frames=batch_frames,
        workers=workers, chunk_seconds=chunk_seconds, levels=levels, beam=beam,
        overwrite=overwrite, channels=channels.value,
    )  # fmt: skip
    options.check(tok)
    with ui.tracker() as progress:
        if shards:
            report = job.to_corpus(tok, items, out, options, rank=rank, world=world,
                                   shard_size=shard_size, progress=progress)  # fmt: skip
        else:
            report = job.to_files(tok, rank_items(items, rank, world), out, options,
                                  progress=progress)  # fmt: skip
    if shards and world > 1:
        ui.note(f"rank {rank} of {world} done; run `tokquant merge {out}` when all ranks are")
    report.extra = {"rank": rank, "world_size": world, **report.extra}
    columns, bits = job.bits_per_frame(tok, levels)
    ui.summary(report, "encode", json_out=json_out,
               columns={"tokens": report.frames * columns, "bits_per_frame": bits})  # fmt: skip
