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
from tokquant.jobs.evaluate import EvalJob

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
    "speaker_similarity": "spk sim",
}


def eval_(
    checkpoint: CheckpointPath,
    tokens: TokenInputs,
    audio: AudioOption,
    vocoder: VocoderOption = EvalJob.vocoder,
    mel_match: MelMatch = EvalJob.mel_match,
    plot: PlotOption = EvalJob.plot,
    device: Device = EvalJob.device,
    ssl_weights: SslWeights = EvalJob.ssl_weights,
    audio_column: AudioColumn = EvalJob.audio_column,
    key_column: KeyColumn = EvalJob.key_column,
    audio_member: AudioMember = EvalJob.audio_member,
    segments: Segments = EvalJob.segments,
    threads: Threads = EvalJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Decode TOKENS (through --vocoder, else Griffin-Lim) and score them against --audio:
    mel and multi-resolution STFT distance, STOI, PESQ-WB, DNSMOS P.835, and the codes'
    bitrate (nominal and entropy-coded), per file and overall."""
    job = EvalJob(
        checkpoint,
        tokens,
        audio,
        vocoder=vocoder,
        mel_match=mel_match,
        plot=plot,
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
