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
    Engine,
    EngineOption,
    Inputs,
    JsonOut,
    KeyColumn,
    Layout,
    NumShards,
    OutDir,
    Overwrite,
    Quiet,
    RayAddress,
    Segments,
    ShardIndex,
    Shards,
    ShardSize,
    SslWeights,
    Threads,
    Workers,
)
from tokquant.cli._output import Output
from tokquant.jobs.encode import EncodeJob


def encode(
    checkpoint: CheckpointPath,
    inputs: Inputs,
    out: OutDir,
    shards: Shards = EncodeJob.shards,
    shard_size: ShardSize = EncodeJob.shard_size,
    num_shards: NumShards = EncodeJob.num_shards,
    shard_index: ShardIndex = EncodeJob.shard_index,
    levels: EncodeLevels = EncodeJob.levels,
    beam: Beam = EncodeJob.beam,
    feature_layout: Layout = EncodeJob.feature_layout,
    channels: Channels = ChannelMode(EncodeJob.channels),
    batch_frames: BatchFrames = EncodeJob.batch_frames,
    workers: Workers = EncodeJob.workers,
    chunk_seconds: ChunkSeconds = EncodeJob.chunk_seconds,
    overwrite: Overwrite = EncodeJob.overwrite,
    device: Device = EncodeJob.device,
    ssl_weights: SslWeights = EncodeJob.ssl_weights,
    audio_column: AudioColumn = EncodeJob.audio_column,
    key_column: KeyColumn = EncodeJob.key_column,
    audio_member: AudioMember = EncodeJob.audio_member,
    segments: Segments = EncodeJob.segments,
    engine: EngineOption = Engine(EncodeJob.engine),  # type: ignore[attr-defined]
    ray_address: RayAddress = EncodeJob.ray_address,
    threads: Threads = EncodeJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode audio or features (files or where corpora live) into token files, or a corpus.

    Running it again skips what is done: existing token files, or finished shards of a
    corpus (a killed run resumes where it stopped, with the same bytes in the end).
    """
    job = EncodeJob(
        checkpoint,
        inputs,
        out,
        shards=shards,
        shard_size=shard_size,
        num_shards=num_shards,
        shard_index=shard_index,
        levels=levels,
        beam=beam,
        feature_layout=None if feature_layout is None else feature_layout.value,
        channels=channels.value,
        batch_frames=batch_frames,
        workers=workers,
        chunk_seconds=chunk_seconds,
        overwrite=overwrite,
        device=device,
        ssl_weights=ssl_weights,
        audio_column=audio_column,
        key_column=key_column,
        audio_member=audio_member,
        segments=segments,
        engine=engine.value,
        ray_address=ray_address,
        threads=threads,
    )
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    rank, world = report.rank, report.world_size
    if shards and world > 1:
        ui.note(f"rank {rank} of {world} done; run `tokquant merge {out}` when all ranks are")
    ui.summary(report, "encode", json_out=json_out, columns=report.columns)
