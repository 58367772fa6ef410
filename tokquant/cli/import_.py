"""``tokquant import``: an RVQ from vector-quantize-pytorch, EnCodec or DAC as a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.choices import PEER_KINDS
from tokquant.cli._options import JsonOut, Overwrite, choices
from tokquant.cli._output import Output

PeerKind = choices("PeerKind", PEER_KINDS, "A peer whose RVQ is read.")


def import_checkpoint(
    kind: Annotated[PeerKind, typer.Argument(help="vqp (ResidualVQ), encodec or dac.")],
    state_dict: Annotated[
        Path,
        typer.Argument(help="The peer quantizer's state dict (.pt weights-only, .safetensors)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write.")],
    frame_rate: Annotated[
        float | None, typer.Option(help="Frames per second of the features, if known.")
    ] = None,
    overwrite: Overwrite = False,
    json_out: JsonOut = False,
) -> None:
    """Turn a peer's RVQ into a tokquant checkpoint whose codes equal the peer's."""
    from tokquant.errors import OutputError
    from tokquant.formats.checkpoint import save_checkpoint
    from tokquant.importers import import_rvq, tokenizer_for
    from tokquant.storage.torch_load import load_state_dict

    ui = Output(json_mode=json_out)
    if out.exists() and out.resolve() == state_dict.resolve():
        raise OutputError(f"{out}: output path equals the input")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: exists; pass --overwrite to replace it")
    rvq = import_rvq(kind.value, load_state_dict(state_dict))
    tokenizer = tokenizer_for(rvq, frame_rate)
    ckpt_id = save_checkpoint(
        tokenizer, out, {"imported_from": kind.value, "source": str(state_dict)}
    )
    summary = {"checkpoint": str(out), "checkpoint_id": ckpt_id, **rvq.config()}
    if json_out:
        ui.json(summary)
    else:
        ui.table(
            f"imported {kind.value}",
            ["", "value"],
            [[k, v] for k, v in summary.items()],
            numeric=False,
        )
