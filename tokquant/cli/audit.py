"""``tokquant audit``: do a checkpoint's codes depend on batching, chunking or device?"""

from __future__ import annotations

import typer

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    ChannelMode,
    Channels,
    CheckpointPath,
    Device,
    Inputs,
    JsonOut,
    KeyColumn,
    Layout,
    Quiet,
    Segments,
    SslWeights,
    Threads,
)
from tokquant.cli._output import Output
from tokquant.jobs.audit import AuditJob


def audit(
    checkpoint: CheckpointPath,
    inputs: Inputs,
    feature_layout: Layout = AuditJob.feature_layout,
    channels: Channels = ChannelMode(AuditJob.channels),
    device: Device = AuditJob.device,
    ssl_weights: SslWeights = AuditJob.ssl_weights,
    audio_column: AudioColumn = AuditJob.audio_column,
    key_column: KeyColumn = AuditJob.key_column,
    audio_member: AudioMember = AuditJob.audio_member,
    segments: Segments = AuditJob.segments,
    threads: Threads = AuditJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Share of codes that stay the same when each input is encoded alone vs in a batch vs
    read in chunks (and CPU vs CUDA where a GPU is present). Writes nothing."""
    job = AuditJob(
        checkpoint,
        inputs,
        feature_layout=None if feature_layout is None else feature_layout.value,
        channels=channels.value,
        device=device,
        ssl_weights=ssl_weights,
        audio_column=audio_column,
        key_column=key_column,
        audio_member=audio_member,
        segments=segments,
        threads=threads,
    )
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    ui.failures(report.failures)
    overall = report.overall()
    if json_out:
        ui.json(
            {
                "checkpoint_id": report.checkpoint_id,
                "inputs": report.rows,
                "overall": overall,
                "failures": report.failures,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        head = ["input", "frames", *(f"same {w}" for w in report.ways)]
        rows = [
            [r["input"], r["frames"], *(_share(r[w]) for w in report.ways)] for r in report.rows
        ]
        total = sum(r["frames"] for r in report.rows)
        rows.append(["all", total, *(_share(overall[w]) for w in report.ways)])
        ui.table("audit: codes equal to each input encoded alone", head, rows)
    if report.failures:
        raise typer.Exit(1)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"
