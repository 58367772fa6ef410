"""The train job: a config and its data -> a checkpoint (front end, normalisation,
projections, quantizer). Under torchrun (``WORLD_SIZE`` > 1) the ranks split every batch
and rank 0 writes the checkpoint; the result equals one process training on the batch."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokquant import distributed
from tokquant.audio.frontend import build_frontend
from tokquant.devices import resolve_device, use_threads
from tokquant.jobs.report import NoProgress, Progress, TrainReport
from tokquant.runners.features import FeatureReader
from tokquant.runners.frames import load_frames
from tokquant.sources import sources_for, takes_audio
from tokquant.storage.folder import check_not_an_input, check_output_file
from tokquant.tokenizer.checkpoint import save_checkpoint
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.training import FewFramesWarning, check_training_memory, train_tokenizer

if TYPE_CHECKING:
    from tokquant.jobs.train import TrainJob


def run_train(job: TrainJob, progress: Progress | None = None) -> TrainReport:
    """Train. ``progress`` gets the loading and training counts, one-line notes
    (``note``) and each step's metrics (``update``) where it has those methods."""

    use_threads(job.threads)
    cfg = _config(
        job,
    )
    out = Path(job.out)
    check_output_file(out, job.overwrite, "checkpoint", (Path(job.config),))
    dev = resolve_device(job.device)
    report, rank, joined = distributed.in_group(
        dev, lambda rank, _: _train(job, cfg, dev, out, rank, progress or NoProgress())
    )
    report.rank, report.joined = rank, joined
    return report


def _config(job: TrainJob) -> Any:
    """The config file with this job's ``train.*`` overrides, validated."""
    cfg = TokenizerConfig.from_yaml(Path(job.config))
    overrides = {
        "steps": job.steps,
        "batch_frames": job.batch_frames,
        "lr": job.lr,
        "seed": job.seed,
        "interpolate": job.interpolate,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg.train, key, value)
    if job.feature_layout is not None:
        cfg.features.layout = job.feature_layout
    return cfg.validate()


def _train(
    job: TrainJob, cfg: Any, dev: Any, out: Path, rank: int, progress: Progress
) -> TrainReport:

    note = getattr(progress, "note", lambda message: None)
    check_training_memory(cfg, dev)  # before any frame is read (dim known: a front end)
    where = job.source_options()
    items = sources_for(
        cfg, [Path(p) for p in job.data], channels=job.channels, outputs=False, options=where
    )
    check_not_an_input(out, (item.path for item in items))
    frontend = build_frontend(cfg.frontend, dev) if takes_audio(cfg) else None
    if cfg.frontend.kind in ("ssl", "codec"):  # the exact encoder weights, by sha256
        cfg.frontend.weights_sha256 = frontend.weights_sha256
    q = cfg.quantizer
    if cfg.train.steps == 0 and q.family == "rvq" and q.num_levels == 1:
        note(
            f"train.steps 0 and one RVQ level: plain k-means ({cfg.train.kmeans_iters} "
            f"iterations) on the normalised frames"
        )
    frames, lengths, next_frames = load_frames(
        FeatureReader(cfg, frontend, cfg.features.layout),
        items,
        progress,
        max_frames=job.max_frames,
        seed=cfg.train.seed,
        with_next=cfg.train.interpolate > 0,
    )
    note(f"{frames.shape[0]} frames of dim {frames.shape[1]} from {len(items)} file(s)")
    progress.start("train", cfg.train.steps)
    update = getattr(progress, "update", lambda step, metrics: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FewFramesWarning)
        result = train_tokenizer(
            cfg, frames, lengths=lengths, next_frames=next_frames, device=dev, progress=update
        )
    said = [str(w.message) for w in caught if issubclass(w.category, FewFramesWarning)]
    summary = {k: v for k, v in result.summary.items() if k != "history"}
    if rank > 0:
        return TrainReport(summary, said)
    # Wall time stays out of the file so the same seed gives the same checkpoint id.
    saved = {k: v for k, v in result.summary.items() if k != "seconds"}
    ckpt_id = save_checkpoint(result.tokenizer, out, saved)
    summary.update({"checkpoint": str(out), "checkpoint_id": ckpt_id})
    return TrainReport(summary, said)
