"""Options shared by several commands, written once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the quantizer runs: cpu, cuda, cuda:N or auto.",
        show_default=True,
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")]


class FeatureLayout(str, Enum):
    """How a feature file's 2-D array is laid out."""

    tc = "tc"
    ct = "ct"


Layout = Annotated[
    FeatureLayout | None,
    typer.Option(
        "--layout",
        help="Feature file layout: tc = frames x dim, ct = dim x frames "
        "(default: the config's or checkpoint's features.layout).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
Checkpoint = Annotated[Path, typer.Argument(help="Checkpoint (.safetensors) from tokquant train.")]


class ChannelMode(str, Enum):
    """How multi-channel audio becomes token files."""

    mix = "mix"
    split = "split"


Channels = Annotated[
    ChannelMode,
    typer.Option(
        "--channels",
        help="Audio with several channels: mix = average them, split = one output per channel.",
        show_default=True,
    ),
]
