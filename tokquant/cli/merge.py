"""``tokquant merge``: join the manifests written by several ranks into one corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import JsonOut
from tokquant.cli._output import Output
from tokquant.jobs.inspect import MergeJob

CorpusOption = Annotated[Path, typer.Argument(help="Corpus folder the ranks wrote into.")]
PartsOption = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[PARTS]...",
        help="Rank manifests to join (default: every manifest.rank*.json in it).",
    ),
]


def merge(
    corpus: CorpusOption,
    parts: PartsOption = MergeJob.parts,
    json_out: JsonOut = False,
) -> None:
    """Write CORPUS/manifest.json from the rank manifests (all ranks must have finished)."""
    ui = Output(json_mode=json_out)
    summary = MergeJob(corpus, parts).run()
    if json_out:
        ui.json(summary)
    else:
        ui.table("merge", list(summary), [list(summary.values())])
