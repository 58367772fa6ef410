"""``tokquant export``: a corpus -> Parquet / WebDataset / fairseq unit files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokquant.choices import EXPORT_FORMATS
from tokquant.cli._options import JsonOut, OutDir, Overwrite, Quiet, TokenLayoutName, choices
from tokquant.cli._output import Output
from tokquant.jobs.export import ExportJob

if TYPE_CHECKING:
    from tokquant.jobs.report import ExportReport

ExportFormat = choices("ExportFormat", EXPORT_FORMATS, "What export writes.")


CorpusOption = Annotated[Path, typer.Argument(help="Corpus folder (with manifest.json).")]
ToOption = Annotated[ExportFormat, typer.Option("--to", help="Output format.")]
LayoutOption = Annotated[
    TokenLayoutName,
    typer.Option(
        "--layout",
        help="Code columns per frame: parallel [T, G], interleave [T*G], delay "
        "[T+G-1, G] (column g shifted by g frames; pad id = vocabulary size - 1).",
    ),
]
OffsetsOption = Annotated[
    bool,
    typer.Option("--offsets", metavar="", help="One flat vocabulary: column g's ids follow g-1's."),
]
DedupOption = Annotated[
    bool,
    typer.Option("--dedup", metavar="", help="Collapse runs of identical frames; add durations."),
]
MetadataOption = Annotated[
    Path | None,
    typer.Option(help="Columns to join by key: .jsonl objects with 'key', or .tsv."),
]
SplitOption = Annotated[str, typer.Option(help="Split name in the output file names.")]
WorkersOption = Annotated[
    int | None, typer.Option(help="Processes over shards (default: CPUs, at most 8).")
]


def export(
    corpus: CorpusOption,
    to: ToOption,
    out: OutDir,
    layout: LayoutOption = TokenLayoutName(ExportJob.layout),
    offsets: OffsetsOption = ExportJob.offsets,
    dedup: DedupOption = ExportJob.dedup,
    metadata: MetadataOption = ExportJob.metadata,
    split: SplitOption = ExportJob.split,
    workers: WorkersOption = ExportJob.workers,
    overwrite: Overwrite = ExportJob.overwrite,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Export a corpus into the files LM trainers read; a re-run resumes where it stopped."""
    job = ExportJob(
        corpus,
        out,
        to=to.value,
        layout=layout.value,
        offsets=offsets,
        dedup=dedup,
        metadata=metadata,
        split=split,
        workers=workers,
        overwrite=overwrite,
    )
    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    with ui.tracker() as progress:
        report = job.run(progress)
    if report.encode_failures:
        ui.warn(
            f"{report.encode_failures} utterance(s) failed at encode and are not in "
            f"the corpus (listed in {corpus}/manifest.json)"
        )
    _metadata_notes(ui, report)
    pad = "" if report.pad_id is None else f" (pad id {report.pad_id})"
    ui.note(f"vocabulary: {report.vocab_size} ids{pad}")
    # the JSON has vocab_size and bytes already; the table, short names
    table = {"vocab": report.vocab_size, "MB": round(report.bytes / 1e6, 2)}
    ui.summary(report, "export", json_out=json_out, columns={} if json_out else table)


def _metadata_notes(ui: Output, report: ExportReport) -> None:
    if report.metadata_joined is None:
        return
    ui.note(f"metadata: joined {report.metadata_joined} of {report.utterances} utterances")
    if report.metadata_missing:
        first = ", ".join(map(repr, report.metadata_missing_keys or []))
        ui.warn(f"{report.metadata_missing} utterance(s) have no metadata (first: {first})")
    if report.metadata_unknown:
        first = ", ".join(map(repr, report.metadata_unknown_keys or []))
        ui.warn(f"{report.metadata_unknown} metadata key(s) are not in the corpus (first: {first})")
