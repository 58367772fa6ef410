"""Fit a tokenizer on feature frames. No printing: progress goes to a callback.

The loss is the reconstruction MSE in the normalised feature space plus the quantizer's
aux loss. Batches are frames drawn uniformly from every training frame (so from across
files; with ``train.interpolate``, a share of them moved towards the next frame of their
file); a held-out share of frames measures validation reconstruction and codebook usage.
With a fixed seed the run is deterministic on CPU.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from tokquant import distributed
from tokquant.checks import format_bytes
from tokquant.devices import memory_bytes
from tokquant.errors import ConfigError, InputError, TrainingError
from tokquant.tokenizer.config import TokenizerConfig
from tokquant.tokenizer.model import Tokenizer

ProgressCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    tokenizer: Tokenizer
    summary: dict[str, Any]


class NextFrames(NamedTuple):
    """The frame after each frame of a sample (``--max-frames``), whose rows are not
    neighbours of one another: ``frames[i]`` follows row ``i`` in its input where
    ``present[i]`` (not after an input's last frame). ``positions[i]`` is row ``i``'s place
    in the stream of all frames, which tells when a next frame is also a sampled row that
    validation holds out."""

    frames: np.ndarray
    present: np.ndarray
    positions: np.ndarray


@dataclass
class TrainingSplit:
    """Frames to train on and to validate with. ``successor[i]`` is the row of
    ``neighbours`` (``train`` itself when None) that follows training frame ``i`` in its
    input, or -1 where that frame is the input's last or its next one was held out (a
    held-out frame never feeds training, not even half of one)."""

    train: torch.Tensor
    val: torch.Tensor
    successor: torch.Tensor
    neighbours: torch.Tensor | None = None


def split_frames(
    frames: np.ndarray,
    val_fraction: float,
    generator: torch.Generator,
    lengths: Sequence[int] | None = None,
    next_frames: NextFrames | None = None,
) -> TrainingSplit:
    """Hold out a random ``val_fraction`` of ``frames``; each training frame's next frame
    comes from ``lengths`` (every frame of whole inputs, back to back) or ``next_frames``
    (a sample's)."""
    if lengths is not None and next_frames is not None:
        raise ValueError("pass lengths or next_frames, not both")
    n = frames.shape[0]
    perm = torch.randperm(n, generator=generator)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 and n > 1 else 0
    data = torch.from_numpy(frames)
    train_rows = perm[n_val:]
    successor = torch.full((train_rows.shape[0],), -1, dtype=torch.long)
    if next_frames is not None:
        positions = torch.from_numpy(next_frames.positions)
        free = torch.from_numpy(next_frames.present)[train_rows] & ~torch.isin(
            positions[train_rows] + 1, positions[perm[:n_val]]
        )
        successor[free] = torch.arange(train_rows.shape[0])[free]
        neighbours = torch.from_numpy(next_frames.frames)[train_rows]
        return TrainingSplit(data[train_rows], data[perm[:n_val]], successor, neighbours)
    if lengths is not None:
        # one slot more, left at -1: "no next frame" (index -1) maps to it
        row_in_train = torch.full((n + 1,), -1, dtype=torch.long)
        row_in_train[train_rows] = torch.arange(train_rows.shape[0])
        successor = row_in_train[next_frame_index(lengths, n)[train_rows]]
    return TrainingSplit(data[train_rows], data[perm[:n_val]], successor)


def next_frame_index(lengths: Sequence[int], n: int) -> torch.Tensor:
    """For ``n`` frames made of inputs of ``lengths`` frames back to back, the index of
    each frame's next frame in its own input, or -1 for an input's last frame."""
    if sum(lengths) != n or min(lengths, default=0) < 0:
        raise InputError(f"lengths sum to {sum(lengths)}, but there are {n} frames")
    sizes = torch.tensor(lengths, dtype=torch.long)
    following = torch.arange(1, n + 1)
    following[sizes.cumsum(0)[sizes > 0] - 1] = -1
    return following


@torch.no_grad()
def evaluate(tokenizer: Tokenizer, frames: torch.Tensor, batch: int = 65536) -> dict[str, float]:
    """Validation reconstruction MSE (normalised space) and mean column usage."""
    was_training = tokenizer.training
    tokenizer.eval()
    sq, count, codes_all = 0.0, 0, []
    for start in range(0, frames.shape[0], batch):
        x = frames[start : start + batch].to(tokenizer.mean.device)
        codes = tokenizer.encode(x)
        recon = tokenizer.project_out(tokenizer.quantizer.decode(codes))
        sq += float((recon - tokenizer.normalize(x)).pow(2).sum())
        count += x.numel()
        codes_all.append(codes.cpu())
    tokenizer.train(was_training)
    codes = torch.cat(codes_all)
    usage = [
        torch.unique(codes[:, g]).numel() / card
        for g, card in enumerate(tokenizer.column_cardinalities)
    ]
    return {"val_mse": sq / max(count, 1), "val_usage": float(np.mean(usage))}


def train_tokenizer(
    config: TokenizerConfig,
    frames: np.ndarray,
    *,
    lengths: Sequence[int] | None = None,
    next_frames: NextFrames | None = None,
    device: torch.device | str = "cpu",
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train on ``frames`` ``[N, F]`` float32 and return the fitted tokenizer.

    ``lengths`` splits ``frames`` into its inputs (utterances) in order, or, for a sample
    of frames, ``next_frames`` holds each one's next frame; ``train.interpolate`` needs one
    of them, to know which frame follows which.
    ``config.features.dim`` is filled in from the data when unset; a set value must match.
    In a torch.distributed run every rank passes the same ``frames`` and trains on its
    slice of each batch (see :mod:`tokquant.distributed`); all ranks end with the same
    parameters. A loss that stops being finite raises :class:`TrainingError`.
    """
    device = torch.device(device)
    config = _with_feature_dim(config, frames)
    tc = config.train
    torch.manual_seed(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    if tc.interpolate > 0 and lengths is None and next_frames is None:
        raise InputError(
            "train.interpolate needs the frames' lengths per input (utterance) or their next frames"
        )
    check_training_memory(config, device)
    codes = max(fitted_codes(config), default=0)
    if frames.shape[0] < codes:
        warnings.warn(
            f"training on {frames.shape[0]} frames for codebooks of {codes} codes: some codes "
            f"cannot get a frame of their own (they start as copies); give it more frames",
            FewFramesWarning,
            stacklevel=2,
        )
    split = split_frames(frames, tc.val_fraction, gen, lengths, next_frames)
    train_x, val_x = split.train, split.val
    tokenizer = Tokenizer(config)
    tokenizer.mean.copy_(train_x.mean(0))
    tokenizer.std.copy_(train_x.std(0, unbiased=False).clamp(min=1e-5))
    tokenizer.to(device)
    start_time = time.perf_counter()
    _init_from_data(tokenizer, train_x, gen, device)
    history, last = _optimise(tokenizer, split, gen, device, progress)
    tokenizer.eval()
    final = evaluate(tokenizer, val_x if val_x.shape[0] else train_x)
    summary = {
        "steps": tc.steps,
        "train_frames": int(train_x.shape[0]),
        "val_frames": int(val_x.shape[0]),
        # No steps (k-means only): no loss to report, and NaN is not JSON.
        **({"final_loss": last["loss"]} if "loss" in last else {}),
        "val_mse": final["val_mse"],
        "val_usage": final["val_usage"],
        "seconds": time.perf_counter() - start_time,
        "history": history,
    }
    return TrainResult(tokenizer.cpu(), summary)


#: What training holds per parameter: the weights, their gradients, Adam's two moments.
TRAINING_COPIES = 4


def _meta_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """The tokenizer built on PyTorch's meta device: its shapes, and no memory."""
    with torch.device("meta"):
        return Tokenizer(config)


def fitted_codes(config: TokenizerConfig) -> list[int]:
    """Codes per level that k-means fits from frames (RVQ); none for the other families,
    whose codes are fixed points."""
    return config.quantizer.sizes() if config.quantizer.family == "rvq" else []  # type: ignore[attr-defined]


def check_training_memory(config: TokenizerConfig, device: torch.device | str) -> None:
    """Refuse, before allocating anything, a config whose tensors alone would not fit in
    the device's memory during training (a 16-deep MLP 65,536 wide, or 64 RVQ levels of
    2^20 codes of dim 65,536, would otherwise die in the allocator or the OOM killer)."""
    if config.features.dim is None:
        return
    device = torch.device(device)
    tok = _meta_tokenizer(config)
    tensors = [*tok.parameters(), *tok.buffers()]
    size = sum(t.numel() * t.element_size() for t in tensors)
    need = TRAINING_COPIES * size
    have = memory_bytes(device)
    if need > have:
        raise ConfigError(
            f"this config's model holds {format_bytes(size)} of tensors, about "
            f"{format_bytes(need)} to train (weights, gradients, optimizer state), more than "
            f"the {format_bytes(have)} of {device.type.upper()} memory here; make "
            f"projection.hidden/depth or the quantizer's codebooks smaller"
        )


class FewFramesWarning(UserWarning):
    """Training data with fewer frames than the codes it is to fit."""


def _with_feature_dim(config: TokenizerConfig, frames: np.ndarray) -> TokenizerConfig:
    if frames.ndim != 2 or frames.shape[0] < 2:
        raise InputError(f"training needs at least 2 frames, found shape {list(frames.shape)}")
    config = copy.deepcopy(config)
    dim = frames.shape[1]
    if config.features.dim is None:
        config.features.dim = dim
    elif config.features.dim != dim:
        raise InputError(f"features have dim {dim}, config features.dim is {config.features.dim}")
    return config


def _init_from_data(
    tokenizer: Tokenizer, train_x: torch.Tensor, gen: torch.Generator, device: torch.device
) -> None:
    """Data-dependent initialisation (RVQ: k-means), on a sample of the training frames."""
    n_init = tokenizer.quantizer.init_frames
    if not n_init:
        return
    n_init = min(train_x.shape[0], n_init)
    sample = train_x[torch.randperm(train_x.shape[0], generator=gen)[:n_init]].to(device)
    with torch.no_grad():
        z = tokenizer.project_in(tokenizer.normalize(sample))
    tokenizer.quantizer.init_from_data(z, iters=tokenizer.config.train.kmeans_iters, generator=gen)


def _optimise(
    tokenizer: Tokenizer,
    split: TrainingSplit,
    gen: torch.Generator,
    device: torch.device,
    progress: ProgressCallback | None,
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """The training loop; returns the evaluation history and the last step's numbers."""
    tc = tokenizer.config.train
    train_x, val_x = split.train, split.val
    rank, world_size = distributed.world()
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    batch = min(tc.batch_frames, train_x.shape[0])
    if world_size > 1:
        if batch % world_size:
            raise InputError(
                f"batch of {batch} frames does not split over {world_size} ranks; "
                f"use a multiple of {world_size}"
            )
        tokenizer.quantizer.batch_ops = distributed.batch_ops()
    share = batch // world_size
    tokenizer.train()
    history: list[dict[str, float]] = []
    last: dict[str, float] = {}
    try:
        for step in range(1, tc.steps + 1):
            rows = slice(rank * share, (rank + 1) * share)
            x = draw_batch(split, batch, tc.interpolate, gen, rows).to(device)
            last = _step(tokenizer, optimizer, x, step, world_size)
            if val_x.shape[0] and (step % tc.eval_every == 0 or step == tc.steps):
                last.update(evaluate(tokenizer, val_x))
                history.append({"step": step, **last})
            if progress is not None:
                progress(step, last)
    finally:
        tokenizer.quantizer.batch_ops = None
    return history, last


def draw_batch(
    split: TrainingSplit,
    size: int,
    interpolate: float,
    gen: torch.Generator,
    rows: slice = slice(None),
) -> torch.Tensor:
    """``size`` training frames drawn uniformly; of them, a share ``interpolate`` (those
    with a next frame) become ``w * frame + (1 - w) * next`` with ``w ~ U(0, 1)``.

    Every rank draws the whole batch from the same generator and keeps its ``rows``, so
    ranks together see exactly what one process would.
    """
    idx = torch.randint(split.train.shape[0], (size,), generator=gen)
    if interpolate == 0:  # draws nothing more: runs without it stay as they were
        return split.train[idx[rows]]
    chosen = torch.rand(size, generator=gen)[rows] < interpolate
    weight = torch.rand(size, 1, generator=gen)[rows]
    idx = idx[rows]
    nxt = split.successor[idx]
    chosen &= nxt >= 0
    x = split.train[idx]
    w = weight[chosen]
    neighbours = split.train if split.neighbours is None else split.neighbours
    x[chosen] = w * x[chosen] + (1 - w) * neighbours[nxt[chosen]]
    return x


def _step(
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    step: int,
    world_size: int,
) -> dict[str, float]:
    recon, out = tokenizer(x)
    recon_loss = F.mse_loss(recon, tokenizer.normalize(x))
    loss = recon_loss + out.aux_loss
    if not torch.isfinite(loss):
        raise TrainingError(
            f"training loss became {loss.item()} at step {step}; try a lower `lr` or another `seed`"
        )
    if loss.requires_grad:  # an EMA RVQ without projections learns in its forward only
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world_size > 1:
            distributed.average_gradients(tokenizer, world_size)
        optimizer.step()
    last = {"loss": loss.item(), "recon_mse": recon_loss.item()}
    if world_size > 1:
        last = {k: distributed.mean_over_ranks(v, world_size) for k, v in last.items()}
    return last
