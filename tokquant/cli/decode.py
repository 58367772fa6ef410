"""``tokquant decode``: token files -> feature files (.npy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tokquant.cli._batch import ensure_output_dir, finish, run_per_file
from tokquant.cli._options import Checkpoint, Device, JsonOut, OutDir, Overwrite, Quiet
from tokquant.cli._output import Output
from tokquant.errors import InputError


def decode(
    checkpoint: Checkpoint,
    tokens: Annotated[
        list[Path], typer.Argument(help="Token files, folders, list files, or corpus folders.")
    ],
    out: OutDir,
    audio: Annotated[
        bool,
        typer.Option(
            "--audio",
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
    from tokquant.devices import resolve_device
    from tokquant.formats.checkpoint import load_checkpoint
    from tokquant.formats.corpus import is_corpus
    from tokquant.formats.tokens import SUFFIX
    from tokquant.inputs import InputItem, expand_inputs, output_path
    from tokquant.pipeline import decode_file, open_corpus_for, takes_audio, write_decoded

    ui = Output(json_mode=json_out, quiet=quiet or json_out)
    ckpt = load_checkpoint(checkpoint, resolve_device(device))
    ensure_output_dir(out)
    files = [t for t in tokens if not is_corpus(t)]
    items = expand_inputs(files, (SUFFIX,), "token") if files else []
    in_corpus = {}  # id(item) -> (corpus, key): utterances of corpus folders
    for root in (t for t in tokens if is_corpus(t)):
        corpus = open_corpus_for(ckpt, root)
        for key in corpus.keys():
            item = InputItem(root / key, Path(key + SUFFIX))
            in_corpus[id(item)] = (corpus, key)
            items.append(item)
    if audio and not takes_audio(ckpt.tokenizer.config):
        raise InputError(f"{checkpoint}: --audio needs a checkpoint with an audio front end")
    out_suffix = ".wav" if audio else ".npy"
    if levels is not None and (ckpt.tokenizer.config.quantizer.family != "rvq" or levels < 1):
        raise InputError("--levels applies to RVQ checkpoints, as a number >= 1")
    result = run_per_file(
        ui,
        "decode",
        items,
        lambda item: output_path(out, item, (SUFFIX,), out_suffix),
        lambda item, target: (
            write_decoded(
                ckpt,
                in_corpus[id(item)][0][in_corpus[id(item)][1]],
                target,
                audio=audio,
                levels=levels,
            )  # fmt: skip
            if id(item) in in_corpus
            else decode_file(ckpt, item.path, target, audio=audio, levels=levels)
        ),
        overwrite=overwrite,
    )
    finish(ui, result, "decode", json_out=json_out)
