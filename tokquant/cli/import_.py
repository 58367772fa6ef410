"""``tokquant import``: an RVQ from vector-quantize-pytorch, EnCodec or DAC, or a whole
EnCodec, DAC or Mimi codec, as a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.choices import PEER_KINDS
from tokquant.cli._options import JsonOut, Overwrite, choices
from tokquant.cli._output import Output
from tokquant.jobs.import_peer import ImportJob

PeerKind = choices("PeerKind", PEER_KINDS, "A peer whose RVQ is read.")


KindOption = Annotated[
    PeerKind,
    typer.Argument(help="vqp (ResidualVQ), encodec or dac (a quantizer's state dict), or "
                   "codec (a transformers EnCodec, DAC or Mimi folder: its encoder, codes, decoder)."),
]  # fmt: skip
StateDictOption = Annotated[
    Path,
    typer.Argument(help="The peer quantizer's state dict (.pt weights-only, .safetensors), "
                   "or with codec the codec's folder (config.json, model.safetensors)."),
]  # fmt: skip
NQuantizersOption = Annotated[
    int | None,
    typer.Option(min=1, help="codec: the first N of its RVQ levels (default: all)."),
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
    n_quantizers: NQuantizersOption = ImportJob.n_quantizers,
    json_out: JsonOut = False,
) -> None:
    """Turn a peer's RVQ into a tokquant checkpoint whose codes equal the peer's."""
    ui = Output(json_mode=json_out)
    summary = ImportJob(
        kind.value,
        state_dict,
        out,
        frame_rate=frame_rate,
        overwrite=overwrite,
        n_quantizers=n_quantizers,
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
