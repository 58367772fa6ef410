"""Options shared by several commands, written once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokquant.choices import CHANNEL_MODES, ENGINES, FEATURE_LAYOUTS, TOKEN_LAYOUTS

if TYPE_CHECKING:
    pass

Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the quantizer runs: cpu, cuda, cuda:N or auto.",
        show_default=True,
    ),
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", metavar="", help="Replace outputs that already exist.")
]


def choices(name: str, values: tuple[str, ...], doc: str) -> type[Enum]:
    """A Typer choice type from the library's own tuple of allowed values, so the CLI
    offers exactly what the code accepts."""
    kind = Enum(name, {v: v for v in values}, type=str)  # type: ignore[misc]
    kind.__doc__ = doc
    return kind


TokenLayoutName = choices("TokenLayoutName", TOKEN_LAYOUTS, "An utterance's code columns.")
FeatureLayout = choices("FeatureLayout", FEATURE_LAYOUTS, "How a feature file's array is laid out.")
Layout = Annotated[
    FeatureLayout | None,  # type: ignore[valid-type]
    typer.Option(
        "--feature-layout",
        help="Feature file layout: tc = frames x dim, ct = dim x frames "
        "(default: the config's or checkpoint's features.layout).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", metavar="", help="Print machine-readable JSON.")]
Threads = Annotated[
    int | None,
    typer.Option(
        min=1,
        show_default=False,
        help="CPU threads for torch. Default: OMP_NUM_THREADS if set, else the CPUs this "
        "process may use (affinity, SLURM_CPUS_PER_TASK, cgroup quota).",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        metavar="",
        help="Only errors and warnings: no progress bars, notes or tables (--json still prints).",
    ),
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
CheckpointPath = Annotated[
    Path, typer.Argument(help="Checkpoint (.safetensors) from tokquant train.")
]


ChannelMode = choices("ChannelMode", CHANNEL_MODES, "How multi-channel audio becomes inputs.")

Channels = Annotated[
    ChannelMode,
    typer.Option(
        "--channels",
        help="Audio with several channels: mix = average them, split = one output per channel.",
        show_default=True,
    ),
]


# Where inputs live: files, folders, lists, and the manifests and containers of corpora.
INPUTS_HELP = (
    "Feature/audio files, folders (searched recursively), list files (paths, or "
    "key<TAB>path), Kaldi wav.scp/feats.scp, fairseq .tsv, WebDataset tars "
    "(shards-{000..009}.tar), Parquet files or folders, saved datasets."
)
Inputs = Annotated[list[Path], typer.Argument(metavar="INPUTS...", help=INPUTS_HELP)]
DataOption = Annotated[
    list[Path] | None,
    typer.Option("--data", "-d", metavar="<path>", help=INPUTS_HELP + " Repeatable."),
]
MoreDataOption = Annotated[
    list[Path] | None,
    typer.Argument(metavar="[DATA]...", help="More --data paths (so --data a b c works)."),
]
TokenInputs = Annotated[
    list[Path],
    typer.Argument(
        metavar="TOKENS...", help="Token files, folders, list files, or corpus folders."
    ),
]
AudioColumn = Annotated[
    str, typer.Option(help="Parquet / datasets inputs: the column holding audio (bytes or paths).")
]
KeyColumn = Annotated[
    str | None,
    typer.Option(help="Parquet / datasets inputs: the key column (default: id, else file names)."),
]
AudioMember = Annotated[
    str | None,
    typer.Option(
        help="WebDataset inputs: the member holding audio, by extension (flac, wav, ...)."
    ),
]
Segments = Annotated[
    Path | None,
    typer.Option(help="Kaldi inputs: the segments file (default: the one beside wav.scp)."),
]


# encode's own options, kept here so the command reads as its list of names.
Shards = Annotated[
    bool,
    typer.Option(
        "--shards",
        metavar="",
        help="Write a corpus (shards + manifest) instead of one file per input.",
    ),
]
ShardSize = Annotated[int, typer.Option(help="Utterances per shard (with --shards).")]
NumShards = Annotated[
    int | None,
    typer.Option(
        help="Split the inputs over this many ranks (default: torchrun/SLURM env, else 1)."
    ),
]
ShardIndex = Annotated[int | None, typer.Option(help="This rank, in [0, num-shards).")]
EncodeLevels = Annotated[
    int | None, typer.Option(help="RVQ: keep the first N levels (a lower bitrate).")
]
Beam = Annotated[
    int | None,
    typer.Option(
        help="RVQ: beam search width (1 = greedy; larger = lower error; default: "
        "the beam the checkpoint was trained for, else 1)."
    ),
]
BatchFrames = Annotated[int, typer.Option(help="Frames per device batch (several files packed).")]
Workers = Annotated[int, typer.Option(help="Background threads reading inputs.")]
Engine = choices("Engine", ENGINES, "Where an encode runs.")
EngineOption = Annotated[
    Engine,  # type: ignore[valid-type]
    typer.Option(
        "--engine",
        help="local = this process (or this rank of torchrun/SLURM); ray = the whole corpus "
        "on a Ray cluster (needs --shards; tasks by tar, row group or --shard-size inputs).",
        show_default=True,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="--engine ray: the cluster's address (default: RAY_ADDRESS, else a "
        "local cluster on this machine's cores)."
    ),
]
ChunkSeconds = Annotated[
    float, typer.Option(help="Long audio is streamed in chunks of this length (memory bound).")
]


SslWeights = Annotated[
    Path | None,
    typer.Option(
        "--ssl-weights",
        help="SSL checkpoints: the encoder's weights file, where it is not the path the "
        "checkpoint recorded (checked against the sha256 it recorded).",
    ),
]
MelMatch = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        show_default=False,
        help="With --vocoder, log-mel tokenizers: move each frame's band energies this far "
        "(in log) toward the tokens' (0: the vocoder's output as it is). Default: 0.5 for a "
        "train-vocoder file (measured, README), 0 for Vocos/BigVGAN (their own output).",
    ),
]
