"""``tokquant eval``: decode tokens to audio and score them as the field's tables do."""

from __future__ import annotations

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
    MelMatch,
    Quiet,
    Segments,
    SslWeights,
    Threads,
    TokenInputs,
)
from tokquant.cli._output import Output
from tokquant.cli._request import request

AudioOption = Annotated[
    list[Path],
    typer.Option(
        "--audio",
        metavar="<path>",
        help="The audio the tokens were encoded from (files, folders, manifests), paired by "
        "key: the tokens' key, or the one file whose path ends in it. Repeatable.",
    ),
]
VocoderOption = Annotated[
    Path | None,
    typer.Option(
        help="A vocoder from train-vocoder for this checkpoint, or a Vocos/BigVGAN folder or "
        "Hub id for a checkpoint on its mel (default: Griffin-Lim)."
    ),
]
PlotOption = Annotated[
    Path | None, typer.Option(help="A folder for one PNG per file: original vs decoded log-mel.")
]
#: Scores in the tables, and how they are printed.
SHOWN = {
    "mel_distance": "mel dist",
    "stft_distance": "stft dist",
    "stoi": "STOI",
    "pesq_wb": "PESQ-WB",
    "dnsmos_sig": "SIG",
    "dnsmos_bak": "BAK",
    "dnsmos_ovrl": "OVRL",
}


def eval_(
    checkpoint: CheckpointPath,
    tokens: TokenInputs,
    audio: AudioOption,
    vocoder: VocoderOption = None,
    mel_match: MelMatch = None,
    plot: PlotOption = None,
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
    """Decode TOKENS (through --vocoder, else Griffin-Lim) and score them against --audio:
    mel and multi-resolution STFT distance, STOI, PESQ-WB, DNSMOS P.835, and the codes'
    bitrate (nominal and entropy-coded), per file and overall."""
    from tokquant.jobs import EvalJob

    job = request(EvalJob, locals())
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    for line in report.missing:
        ui.warn(f"not scored: {line}")
    ui.failures(report.failures)
    if json_out:
        ui.json(report.to_dict())
    else:
        _tables(ui, report)
    if report.failures:
        raise typer.Exit(1)


def _tables(ui: Output, report) -> None:
    names = [k for k in SHOWN if k in report.overall]
    rows = [[r["key"], *(_num(r.get(k)) for k in names)] for r in report.rows]
    rows.append(["all", *(_num(report.overall.get(k)) for k in names)])
    if report.reference:
        rows.append(["original audio", *(_num(report.reference.get(k)) for k in names)])
    ui.table(f"eval: {report.decoder}", ["file", *(SHOWN[k] for k in names)], rows)
    ui.note(
        f"bitrate {report.bitrate_kbps:.2f} kbps nominal, {report.entropy_kbps:.2f} kbps "
        f"entropy-coded; {len(report.rows)} file(s) in {report.seconds:.1f}s"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
