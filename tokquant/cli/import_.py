"""``tokquant import``: an RVQ from vector-quantize-pytorch, EnCodec or DAC as a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.choices import PEER_KINDS
from tokquant.cli._options import JsonOut, Overwrite, choices
from tokquant.cli._output import Output
from tokquant.jobs.import_peer import ImportJob

PeerKind = choices("PeerKind", PEER_KINDS, "A peer whose RVQ is read.")


KindOption = Annotated[PeerKind, typer.Argument(help="vqp (ResidualVQ), encodec or dac.")]
StateDictOption = Annotated[
    Path,
    typer.Argument(help="The peer quantizer's state dict (.pt weights-only, .safetensors)."),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write.")]
FrameRateOption = Annotated[
    float | None, typer.Option(help="Frames per second of the features, if known.")
]


def import_checkpoint(
    kind: KindOption,
    state_dict: StateDictOption,
    out: OutOption,
    frame_rate: FrameRateOption = ImportJob.frame_rate,
    overwrite: Overwrite = ImportJob.overwrite,
    json_out: JsonOut = False,
) -> None:
    """Turn a peer's RVQ into a tokquant checkpoint whose codes equal the peer's."""
    ui = Output(json_mode=json_out)
    summary = ImportJob(
        kind.value, state_dict, out, frame_rate=frame_rate, overwrite=overwrite
    ).run()
    if json_out:
        ui.json(summary)
    else:
        ui.table(
            f"imported {kind.value}",
            ["", "value"],
            [[k, v] for k, v in summary.items()],
            numeric=False,
        )
