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
from tokquant.cli._request import request


def audit(
    checkpoint: CheckpointPath,
    inputs: Inputs,
    feature_layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    device: Device = "cpu",
    ssl_weights: SslWeights = None,
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    threads: Threads = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Share of codes that stay the same when each input is encoded alone vs in a batch vs
    read in chunks (and CPU vs CUDA where a GPU is present). Writes nothing."""
    from tokquant.jobs import AuditJob

    job = request(AuditJob, locals())
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
            [r["input"], r["frames"], *(f"{100 * r[w]:.2f}%" for w in report.ways)]
            for r in report.rows
        ]
        total = sum(r["frames"] for r in report.rows)
        rows.append(["all", total, *(f"{100 * overall[w]:.2f}%" for w in report.ways)])
        ui.table("audit: codes equal to each input encoded alone", head, rows)
    if report.failures:
        raise typer.Exit(1)
