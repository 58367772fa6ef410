"""The train-vocoder job: a tokenizer checkpoint and audio -> a waveform decoder for its
tokens (:mod:`tokquant.decoders.trained`), trained on the features decode will give it.

Inputs are read as ``train`` reads them (files, folders, lists, manifests, tars, Parquet;
``channels``), a failing input fails alone. Under torchrun the ranks draw their own
segments and average gradients; rank 0 writes. A run saves its state beside ``out``
(``OUT.state``) every tenth of its steps, and the same job run again continues from it:
the same draws, weights and optimiser as a run that never stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tokquant import distributed
from tokquant.api import open_tokenizer
from tokquant.checks import shown
from tokquant.decoders.trained.file import save_vocoder
from tokquant.decoders.trained.recipe import VocoderRecipe
from tokquant.decoders.trained.training import (
    VocoderTraining,
    build,
    make_pair,
    perturbed,
    train_vocoder,
)
from tokquant.devices import resolve_device, use_threads
from tokquant.engines.outputs import made_by
from tokquant.errors import FormatError, InputError
from tokquant.formats.vocoder import check_decoder_tensors
from tokquant.jobs.report import NoProgress, Progress, TrainReport
from tokquant.runners.each import for_each
from tokquant.runners.features import source_audio
from tokquant.sources import sources_for, takes_audio
from tokquant.storage.atomic import atomic_path, refuse_non_regular
from tokquant.storage.folder import check_not_an_input, check_output_file
from tokquant.storage.torch_load import quiet_torch_load

if TYPE_CHECKING:
    from tokquant.jobs.train_vocoder import TrainVocoderJob


def _fields(training: Any) -> dict[str, Any]:
    return dataclasses.asdict(training)


def _resumable(path: Path, checkpoint_id: str, training: Any) -> dict[str, Any] | None:
    """The state an earlier run of this same job left at ``path``, else None (a state of
    another checkpoint or recipe is not resumed: the run starts over)."""
    if not path.is_file() or path.is_symlink():
        return None

    try:
        state = quiet_torch_load(path)
    except Exception:  # noqa: BLE001 - an unreadable state is started over, not trusted
        return None
    if (
        not isinstance(state, dict)
        or state.get("checkpoint_id") != checkpoint_id
        or state.get("training") != _fields(training)
    ):
        return None
    return state


def _check_state(path: Path, state: dict[str, Any], vocoder: Any, training: Any) -> None:
    """A state of this job (its ids match) whose content is whole: a step within the
    run, the decoder's tensors, an optimiser state of the decoder's shapes. Anything
    else is one line naming the file, before a single draw is replayed."""

    def refuse(why: str) -> InputError:
        return InputError(
            f"{path}: cannot resume from this train-vocoder state ({why}); remove it, or "
            f"pass `overwrite=True` to start over"
        )

    for key in ("model", "step", "optimizer", *(("adversary",) if training.adversarial else ())):
        if key not in state:
            raise refuse(f"no {key!r}")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= training.steps:
        raise refuse(f"step must be an integer in [0, {training.steps}], found {shown(step)}")
    if not isinstance(state["model"], dict):
        raise refuse("its decoder tensors are not this decoder's")
    try:
        check_decoder_tensors(vocoder.state_dict(), state["model"], "model")
    except FormatError as exc:
        raise refuse(str(exc)) from None
    shapes = [p.shape for p in vocoder.parameters()]
    optimizer = state["optimizer"]
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    moments = optimizer.get("state") if isinstance(optimizer, dict) else None
    if not isinstance(groups, list) or not isinstance(moments, dict):
        raise refuse("its optimizer state is not AdamW's")
    for index, entry in moments.items():
        if (
            not isinstance(index, int)
            or not 0 <= index < len(shapes)
            or not isinstance(entry, dict)
        ):
            raise refuse("its optimizer state is not for this decoder")
        for name in ("exp_avg", "exp_avg_sq"):
            value = entry.get(name)
            if not isinstance(value, torch.Tensor) or value.shape != shapes[index]:
                raise refuse(f"optimizer {name} of parameter {index} is not of its shape")
    try:
        torch.optim.AdamW(vocoder.parameters()).load_state_dict(optimizer)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise refuse(
            f"its optimizer state does not load: {str(exc).splitlines()[0][:100]}"
        ) from None


def _save_state(
    path: Path, vocoder: Any, box: dict[str, Any], step: int, checkpoint_id: str, training: Any
) -> None:

    state = {
        "step": step,
        "model": vocoder.state_dict(),
        "optimizer": box["optimizer"].state_dict(),
        "checkpoint_id": checkpoint_id,
        "training": _fields(training),
    }
    if box.get("adversary") is not None:
        state["adversary"] = box["adversary"].state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def run_train_vocoder(job: TrainVocoderJob, progress: Progress | None = None) -> TrainReport:
    """Train and write ``out``; the report's summary holds the steps, time, final
    losses, the inputs' frames and the vocoder's id."""

    use_threads(job.threads)
    out = Path(job.out)
    check_output_file(out, job.overwrite, "vocoder", (job.checkpoint, job.ssl_weights))
    # the state is written as the run goes: a link or FIFO there is refused now, not
    # a tenth of the way in
    refuse_non_regular(out.with_name(out.name + ".state"))
    training = recipe_of(job)
    training.check()
    dev = resolve_device(job.device)
    report, rank, joined = distributed.in_group(
        dev,
        lambda rank, world: _train(job, training, dev, out, rank, world, progress or NoProgress()),
    )
    report.rank, report.joined = rank, joined
    return report


def recipe_of(job: TrainVocoderJob) -> Any:

    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(VocoderRecipe)}
    return VocoderTraining(**{**fields, "speeds": tuple(job.speeds)})


def _train(
    job: TrainVocoderJob,
    training: Any,
    dev: Any,
    out: Path,
    rank: int,
    world: int,
    progress: Progress,
) -> TrainReport:

    tok = open_tokenizer(job.checkpoint, str(dev), job.ssl_weights)
    if not takes_audio(tok.config):
        raise InputError(
            f"{job.checkpoint}: reads feature files; a vocoder is trained "
            f"on audio, for a tokenizer with an audio front end"
        )
    pairs, failures = _pairs(job, tok, training.speeds, progress)
    vocoder = build(tok, training)
    state_path = out.with_name(out.name + ".state")
    state = None if job.overwrite else _resumable(state_path, made_by(tok), training)
    if state is not None:
        _check_state(state_path, state, vocoder, training)
        vocoder.load_state_dict(state["model"])
        getattr(progress, "note", lambda m: None)(
            f"resuming from step {state['step']} ({state_path.name})"
        )
    start = 0 if state is None else int(state["step"])
    every = max(1, training.steps // 10)
    progress.start("train-vocoder", training.steps)
    progress.advance(start)
    update = getattr(progress, "update", None)

    def on_step(step: int, metrics: dict[str, float]) -> None:
        progress.advance()
        if update is not None:
            update(step, {k: metrics[k] for k in ("stft", "mel") if k in metrics})
        if rank == 0 and step % every == 0 and step < training.steps:
            _save_state(state_path, vocoder, result_box, step, made_by(tok), training)

    result_box: dict[str, Any] = {}
    result = train_vocoder(
        vocoder,
        pairs,
        training,
        device=dev,
        rank=rank,
        world=world,
        start_step=start,
        state=state,
        on_step=on_step,
        optimizer_box=result_box,
    )
    summary = {
        **result["summary"],
        "inputs": len(pairs),
        "frames": sum(p.features.shape[0] for p in pairs),
    }
    if rank == 0:
        summary["vocoder"] = str(out)
        summary["vocoder_id"] = save_vocoder(vocoder.cpu(), out, made_by(tok), summary)
        state_path.unlink(missing_ok=True)
    return TrainReport(summary, warnings=failures)


def _pairs(
    job: TrainVocoderJob, tok: Any, speeds: tuple[float, ...], progress: Progress
) -> tuple[list[Any], list[str]]:
    """Every input's decoded features and audio; an input that cannot be read fails
    alone (its line in the report's warnings)."""

    items = sources_for(
        tok.config,
        [Path(p) for p in job.data],
        channels=job.channels,
        outputs=False,
        options=job.source_options(),
    )
    check_not_an_input(Path(job.out), (item.path for item in items))
    rate = tok.config.frontend.sample_rate
    pairs, failures = [], []

    def prepare(item: Any) -> None:
        wave = source_audio(item, rate)
        made = [make_pair(tok, perturbed(wave, rate, speed)) for speed in speeds]
        if made[0] is None:
            failures.append(f"{item.origin}: shorter than one frame")
        pairs.extend(pair for pair in made if pair is not None)

    for_each(items, prepare, failures, progress, "prepare")
    if not pairs:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        why = f"{failures[0]}{more}" if failures else "no input"
        raise InputError(f"no usable audio in {', '.join(map(str, job.data))}: {why}")
    return pairs, failures
