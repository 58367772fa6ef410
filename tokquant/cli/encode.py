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
from tokquant.cli._request import request


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
    feature_layout: Layout = None,
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
    engine: EngineOption = Engine.local,  # type: ignore[attr-defined]
    ray_address: RayAddress = None,
    threads: Threads = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode audio or features (files or where corpora live) into token files, or a corpus.

    Running it again skips what is done: existing token files, or finished shards of a
    corpus (a killed run resumes where it stopped, with the same bytes in the end).
    """
    from tokquant.jobs import EncodeJob

    job = request(EncodeJob, locals())
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    rank, world = report.rank, report.world_size
    if shards and world > 1:
        ui.note(f"rank {rank} of {world} done; run `tokquant merge {out}` when all ranks are")
    ui.summary(report, "encode", json_out=json_out, columns=report.columns)
