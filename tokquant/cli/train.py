"""``tokquant train``: fit a tokenizer from a config on feature files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokquant.cli._options import (
    INPUTS_HELP,
    AudioColumn,
    AudioMember,
    ChannelMode,
    Channels,
    Device,
    FeatureLayout,
    JsonOut,
    KeyColumn,
    Layout,
    Overwrite,
    Quiet,
    Segments,
    source_options,
)
from tokquant.cli._output import Output
from tokquant.errors import InputError, OutputError

if TYPE_CHECKING:
    from tokquant.config import TokenizerConfig

Interpolate = Annotated[float | None, typer.Option(help="Override train.interpolate (0 to 1).")]
MaxFrames = Annotated[
    int | None,
    typer.Option(
        help="Train on a uniform sample of this many frames across all inputs, drawn while "
        "reading: memory grows with N, not with the corpus (twice N frames with "
        "train.interpolate, which keeps each one's next frame)."
    ),
]


def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="Config YAML (see configs/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors).")],
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help=INPUTS_HELP + " Repeatable."),
    ] = None,
    more_data: Annotated[
        list[Path] | None, typer.Argument(help="More data paths (so --data a b c works).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Override train.steps.")] = None,
    batch_frames: Annotated[int | None, typer.Option(help="Override train.batch_frames.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override train.lr.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    interpolate: Interpolate = None,
    max_frames: MaxFrames = None,
    layout: Layout = None,
    channels: Channels = ChannelMode.mix,
    overwrite: Overwrite = False,
    device: Device = "cpu",
    audio_column: AudioColumn = "audio",
    key_column: KeyColumn = None,
    audio_member: AudioMember = None,
    segments: Segments = None,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Train a tokenizer (front end, normalisation, projections, quantizer); write a checkpoint.

    Under torchrun (WORLD_SIZE > 1) the ranks split every batch and rank 0 writes the
    checkpoint; the result equals one process training on the whole batch.
    """
    from tokquant import distributed
    from tokquant.devices import resolve_device

    cfg = _config(config, layout, steps=steps, batch_frames=batch_frames, lr=lr, seed=seed,
                  interpolate=interpolate)  # fmt: skip
    _check_out(out, overwrite)
    dev = resolve_device(device)
    joined = distributed.init_from_env(dev)
    rank, _ = distributed.world()
    ui = Output(json_mode=json_out, quiet=quiet or json_out or rank > 0)
    try:
        where = source_options(audio_column, key_column, audio_member, segments)
        _train(ui, cfg, dev, out, [*(data or []), *(more_data or [])], where,
               channels is ChannelMode.split, json_out, rank, max_frames)  # fmt: skip
    except BaseException:
        if joined:
            import torch.distributed as dist

            dist.destroy_process_group()
        raise
    if joined:  # no rank leaves while rank 0 still writes; then past gloo's own teardown
        distributed.leave()
        distributed.exit_now(0)


def _config(path: Path, layout: FeatureLayout | None, **overrides: object) -> TokenizerConfig:
    """The config file with the command line's ``train.*`` overrides, validated."""
    from tokquant.config import TokenizerConfig

    cfg = TokenizerConfig.from_yaml(path)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg.train, key, value)
    if layout is not None:
        cfg.features.layout = layout.value
    return cfg.validate()


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; name the checkpoint file to write")
    if out.exists() and not overwrite:
        raise OutputError(f"{out}: exists; pass --overwrite to replace it")


def _train(ui, cfg, dev, out, data, where, split, json_out, rank, max_frames) -> None:
    from tokquant.audio.frontend import build_frontend
    from tokquant.formats.checkpoint import save_checkpoint
    from tokquant.jobs.features import FeatureReader
    from tokquant.jobs.frames import load_frames
    from tokquant.sources import sources_for, takes_audio
    from tokquant.train import FewFramesWarning, check_training_memory, train_tokenizer

    check_training_memory(cfg, dev)  # before any frame is read (dim known: a front end)
    items = sources_for(
        cfg, data, channels="split" if split else "mix", outputs=False, options=where
    )
    if out.resolve() in {item.path.resolve() for item in items if item.path is not None}:
        raise InputError(f"{out}: output path equals an input")
    frontend = build_frontend(cfg.frontend, dev) if takes_audio(cfg) else None
    if cfg.frontend.kind == "ssl":  # the checkpoint names the exact encoder weights
        cfg.frontend.weights_sha256 = frontend.weights_sha256
    q = cfg.quantizer
    if cfg.train.steps == 0 and q.family == "rvq" and q.num_levels == 1:
        ui.note(f"train.steps 0 and one RVQ level: plain k-means ({cfg.train.kmeans_iters} "
                f"iterations) on the normalised frames")  # fmt: skip
    with ui.tracker() as progress:
        frames, lengths, next_frames = load_frames(
            FeatureReader(cfg, frontend, cfg.features.layout), items, progress,
            max_frames=max_frames, seed=cfg.train.seed, with_next=cfg.train.interpolate > 0,
        )  # fmt: skip
    ui.note(f"{frames.shape[0]} frames of dim {frames.shape[1]} from {len(items)} file(s)")

    with ui.progress(with_metrics=True) as bar:
        task = bar.add_task("train", total=cfg.train.steps, metrics="")

        def on_step(step: int, metrics: dict[str, float]) -> None:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            bar.update(task, completed=step, metrics=shown)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FewFramesWarning)
            result = train_tokenizer(cfg, frames, lengths=lengths, next_frames=next_frames,
                                     device=dev, progress=on_step)  # fmt: skip
    for warning in caught:
        if issubclass(warning.category, FewFramesWarning):
            ui.warn(str(warning.message))

    if rank > 0:
        return
    summary = {k: v for k, v in result.summary.items() if k != "history"}
    # Wall time stays out of the file so the same seed gives the same checkpoint id.
    saved = {k: v for k, v in result.summary.items() if k != "seconds"}
    ckpt_id = save_checkpoint(result.tokenizer, out, saved)
    summary.update({"checkpoint": str(out), "checkpoint_id": ckpt_id})
    if json_out:
        ui.json(summary)
        return
    rows = [
        [k.replace("_", " "), f"{v:.4g}" if isinstance(v, float) else v] for k, v in summary.items()
    ]
    ui.table("train", ["", "value"], rows, numeric=False)
