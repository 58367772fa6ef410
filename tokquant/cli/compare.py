"""``tokquant compare``: several tokenizers scored on the same audio, one table, and a
listening page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import (
    AudioColumn,
    AudioMember,
    Device,
    JsonOut,
    KeyColumn,
    OutDir,
    Overwrite,
    Quiet,
    Segments,
    SslWeights,
    Threads,
)
from tokquant.cli._output import Output
from tokquant.jobs.compare import CompareJob

TokenizersArgument = Annotated[
    list[Path],
    typer.Argument(metavar="TOKENIZERS...", help="Checkpoints (tokquant train or import)."),
]
ReferenceAudio = Annotated[
    list[Path],
    typer.Option("--audio", metavar="<path>",
                 help="The reference audio (files, folders, manifests). Repeatable."),
]  # fmt: skip
VocodersOption = Annotated[
    list[str] | None,
    typer.Option(
        "--vocoder",
        metavar="<path>",
        help="One per tokenizer, in order: a train-vocoder file, a Vocos/BigVGAN folder or "
        "Hub id, or 'default' (its own: a codec's decoder, else Griffin-Lim). Repeatable.",
    ),
]
HtmlOption = Annotated[
    bool,
    typer.Option("--html", metavar="",
                 help="Write OUT/index.html: players, log-mel images, usage plots."),
]  # fmt: skip
SHOWN = {
    "bitrate_kbps": "kbps",
    "mel_distance": "mel dist",
    "stoi": "STOI",
    "pesq_wb": "PESQ-WB",
    "dnsmos_ovrl": "OVRL",
    "speaker_similarity": "spk sim",
    "encode_x_real_time": "enc xRT",
    "decode_x_real_time": "dec xRT",
}


def compare(
    tokenizers: TokenizersArgument,
    audio: ReferenceAudio,
    out: OutDir,
    vocoders: VocodersOption = CompareJob.vocoders,
    html: HtmlOption = CompareJob.html,
    device: Device = CompareJob.device,
    ssl_weights: SslWeights = CompareJob.ssl_weights,
    overwrite: Overwrite = CompareJob.overwrite,
    audio_column: AudioColumn = CompareJob.audio_column,
    key_column: KeyColumn = CompareJob.key_column,
    audio_member: AudioMember = CompareJob.audio_member,
    segments: Segments = CompareJob.segments,
    threads: Threads = CompareJob.threads,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Encode --audio with each tokenizer, decode it through its decoder and score it as
    eval does, plus encode and decode speed: one table (--json: per file too), and with
    --html a listening page."""
    job = CompareJob(
        audio,
        tokenizers,
        out,
        vocoders=vocoders,
        html=html,
        device=device,
        ssl_weights=ssl_weights,
        overwrite=overwrite,
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
    if json_out:
        ui.json(report.to_dict())
        return
    rows = []
    for s in report.systems:
        values = {**s["overall"], **s}
        rows.append([s["name"], s["decoder"], *(_num(values.get(k)) for k in SHOWN)])
    if report.reference:
        rows.append(["original audio", "-", *(_num(report.reference.get(k)) for k in SHOWN)])
    ui.table(f"compare: {report.audio_seconds:.1f} s of audio", ["system", "decoder",
             *SHOWN.values()], rows)  # fmt: skip
    if report.page:
        ui.note(f"listening page: {report.page}")


def _num(value: object) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.3f}"
