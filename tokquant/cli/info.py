"""``tokquant info``: describe a checkpoint, a token file or a corpus folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._options import JsonOut
from tokquant.cli._output import Output
from tokquant.errors import FormatError, InputError
from tokquant.storage.safe_json import loads as json_loads


def info(
    file: Annotated[Path, typer.Argument(help="A checkpoint, a token file or a corpus folder.")],
    json_out: JsonOut = False,
) -> None:
    """Say what a file is: kind, config, ids, shapes."""
    from tokquant.formats import checkpoint as ckpt_format
    from tokquant.formats import corpus as corpus_format
    from tokquant.formats import tokens as tokens_format

    ui = Output(json_mode=json_out)
    if file.is_dir() and not corpus_format.is_corpus(file):
        unmerged = any(file.glob("manifest.rank*-of-*.json"))
        raise InputError(f"{file}: an unmerged corpus; run `tokquant merge {file}` first" if unmerged
                         else f"{file}: is a folder; info describes a checkpoint, a token file "
                              f"or a corpus folder")  # fmt: skip
    if not file.is_dir() and not file.is_file():
        raise InputError(f"{file}: file not found")
    kind = "corpus" if file.is_dir() else _sniff(file)
    if kind == "corpus":
        data = corpus_format.describe(file)
    elif kind == tokens_format.FORMAT:
        tok = tokens_format.read_tokens(file)
        data = {
            "kind": "tokens",
            "path": str(file),
            "format_version": tok.format_version,
            "tokquant_version": tok.tokquant_version,
            "checkpoint_id": tok.checkpoint_id,
            "source": tok.source,
            "channel": tok.channel,
            "num_frames": tok.num_frames,
            "frame_rate": tok.frame_rate,
            "columns": tok.columns,
            "quantizer": tok.quantizer,
        }
    elif kind == ckpt_format.FORMAT or file.suffix == ".pt":
        meta = ckpt_format.read_checkpoint_metadata(file)
        data = {
            "kind": "checkpoint",
            "path": str(file),
            "id": ckpt_format.file_sha256(file),
            "config": meta["config"],
            "summary": {k: v for k, v in meta["summary"].items() if k != "history"},
            "tensors": meta["tensors"],
            "parameters": sum(_numel(s) for s in meta["tensors"].values()),
        }
    else:
        raise FormatError(f"{file}: neither a tokquant checkpoint nor a token file")
    if json_out:
        ui.json(data)
        return
    rows = []
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        rows.append([key, value])
    ui.table(f"{data['kind']}: {file.name}", ["field", "value"], rows, numeric=False)


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _sniff(path: Path) -> str | None:
    """The ``format`` metadata of a safetensors file, read from its JSON header only."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 2 <= size <= 100 << 20:
                return None
            header = json_loads(fh.read(size), str(path))
        return header.get("__metadata__", {}).get("format")
    except (OSError, ValueError, AttributeError):
        return None
