"""``tokquant decode``: token files -> feature files (.npy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._batch import run_per_file
from tokquant.cli._options import Checkpoint, Device, JsonOut, OutDir, Overwrite, Quiet
from tokquant.cli._output import Output


def decode(
    checkpoint: Checkpoint,
    tokens: Annotated[list[Path], typer.Argument(help="Token files, folders or list files.")],
    out: OutDir,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Decode token files back into features (.npy files of frames x dim)."""
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.tokens import SUFFIX
    from tokquant.inputs import expand_inputs, output_path
    from tokquant.pipeline import decode_file

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    items = expand_inputs(tokens, (SUFFIX,), "token")
    result = run_per_file(
        ui,
        "decode",
        items,
        lambda item: output_path(out, item, (SUFFIX,), ".npy"),
        lambda item, target: decode_file(ckpt, item.path, target),
        overwrite=overwrite,
    )
    summary = {
        "files_decoded": result.done,
        "files_skipped": result.skipped,
        "files_failed": len(result.failures),
        "frames": result.frames,
        "seconds": round(result.seconds, 3),
        "failures": result.failures,
    }
    if json_out:
        ui.json(summary)
    else:
        ui.table(
            "decode",
            ["files", "skipped", "failed", "frames", "time"],
            [[result.done, result.skipped, len(result.failures), result.frames,
              f"{result.seconds:.2f}s"]],
        )  # fmt: skip
    if result.failures:
        raise typer.Exit(1)
