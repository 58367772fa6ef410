"""``tokquant info``: describe a checkpoint, a token file or a corpus folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import JsonOut
from tokquant.cli._output import Output
from tokquant.jobs import InfoJob

FileOption = Annotated[Path, typer.Argument(help="A checkpoint, a token file or a corpus folder.")]


def info(
    file: FileOption,
    json_out: JsonOut = False,
) -> None:
    """Say what a file is: kind, config, ids, shapes."""
    ui = Output(json_mode=json_out)
    data = InfoJob(file).run()
    if json_out:
        ui.json(data)
        return
    rows = []
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        rows.append([key, value])
    ui.table(f"{data['kind']}: {file.name}", ["field", "value"], rows, numeric=False)
