"""``tokquant verify``: check a corpus against its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import JsonOut
from tokquant.cli._output import Output
from tokquant.jobs import VerifyJob

CorpusOption = Annotated[Path, typer.Argument(help="Corpus folder (with manifest.json).")]


def verify(
    corpus: CorpusOption,
    json_out: JsonOut = False,
) -> None:
    """Checksums, utterance and frame counts, keys, offsets, every code in range."""
    ui = Output(json_mode=json_out)
    summary = VerifyJob(corpus).run()
    problems = summary["problems"]
    if json_out:
        ui.json(summary)
    else:
        for problem in problems:
            ui.failure(f"{corpus}/{problem}")
        ui.table(
            "verify",
            ["corpus", "shards", "utterances", "frames", "problems"],
            [[corpus, summary["shards"], summary["utterances"], summary["frames"], len(problems)]],
        )
    if problems:
        raise typer.Exit(1)
