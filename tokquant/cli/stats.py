"""``tokquant stats``: codebook usage of token files, and reconstruction error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    CheckpointPath,
    Device,
    JsonOut,
    KeyColumn,
    Layout,
    Quiet,
    Segments,
    SslWeights,
    Threads,
    TokenInputs,
)
from tokquant.cli._output import Output
from tokquant.jobs.stats import StatsJob

FeaturesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--features",
        metavar="<path>",
        help="The encoded inputs (feature or audio files, same names as the tokens) to add "
        "reconstruction error, in the feature domain.",
    ),
]
TopOption = Annotated[int, typer.Option(help="How many most frequent codes to list.")]
PlotOption = Annotated[
    Path | None, typer.Option("--plot", help="Write a usage histogram per column (PNG).")
]


def stats(
    checkpoint: CheckpointPath,
    tokens: TokenInputs,
    features: FeaturesOption = StatsJob.features,
    top: TopOption = StatsJob.top,
    plot: PlotOption = StatsJob.plot,
    feature_layout: Layout = StatsJob.feature_layout,
    device: Device = StatsJob.device,
    ssl_weights: SslWeights = StatsJob.ssl_weights,
    audio_column: AudioColumn = StatsJob.audio_column,
    key_column: KeyColumn = StatsJob.key_column,
    audio_member: AudioMember = StatsJob.audio_member,
    segments: Segments = StatsJob.segments,
    threads: Threads = StatsJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Per column (RVQ level or bit group): usage, dead codes, entropy, perplexity."""
    job = StatsJob(
        checkpoint,
        tokens,
        features=features,
        top=top,
        plot=plot,
        feature_layout=None if feature_layout is None else feature_layout.value,
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
    if json_out:
        ui.json(_as_json(report.checkpoint_id, report))
    else:
        _print_tables(ui, report)
    if report.failures:
        raise typer.Exit(1)


def _as_json(checkpoint_id: str, report) -> dict:
    result = {
        "files": report.sources,
        "frames": report.usage.tokens,
        "checkpoint_id": checkpoint_id,
        "columns": [c.to_dict() for c in report.columns],
    }
    if report.reconstruction is not None:
        result["reconstruction"] = report.reconstruction.result().to_dict()
    if report.failures:
        result["failures"] = report.failures
    return result


def _print_tables(ui: Output, report) -> None:
    ui.table(
        f"codebook usage: {report.sources} input(s), {report.usage.tokens} frames",
        ["column", "codes", "used", "usage", "dead", "entropy (bits)", "perplexity", "top codes"],
        [
            [
                c.name,
                c.cardinality,
                c.used,
                f"{100 * c.usage:.2f}%",
                c.dead,
                f"{c.entropy_bits:.3f} / {c.max_entropy_bits:.0f}",
                f"{c.perplexity:.1f}",
                " ".join(f"{code}x{n}" for code, n in c.top),
            ]
            for c in report.columns
        ],
    )
    if report.reconstruction is not None:
        r = report.reconstruction.result()
        ui.table(
            "reconstruction (raw features; normalised: as the tokenizer sees them)",
            ["frames", "MSE", "SNR", "cosine", "SNR normalised"],
            [
                [
                    r.frames,
                    f"{r.mse:.5g}",
                    _db(r.snr_db),
                    f"{r.cosine:.4f}",
                    _db(r.normalized_snr_db),
                ]
            ],
        )


def _db(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f} dB"
