"""``tokquant decode``: token files -> feature files (.npy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import CheckpointPath, Device, JsonOut, OutDir, Overwrite, Quiet
from tokquant.cli._output import Output


def decode(
    checkpoint: CheckpointPath,
    tokens: Annotated[
        list[Path], typer.Argument(help="Token files, folders, list files, or corpus folders.")
    ],
    out: OutDir,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio",
            metavar="",
            help="Write .wav through Griffin-Lim (logmel/fbank front ends; an approximate "
            "vocoder, for listening checks) instead of .npy features.",
        ),
    ] = False,
    levels: Annotated[
        int | None, typer.Option(help="RVQ: decode with the first N levels only.")
    ] = None,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Decode token files back into features (.npy files of frames x dim) or audio."""
    from tokquant.jobs import DecodeJob

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    job = DecodeJob(checkpoint, tokens, out, audio=audio, levels=levels, overwrite=overwrite,
                    device=device)  # fmt: skip
    with ui.tracker() as progress:
        report = job.run(progress)
    ui.summary(report, "decode", json_out=json_out)
