"""Data-parallel training across processes (torchrun; gloo on CPU, nccl on CUDA).

Every rank holds the same data and draws the same global batch indices, then keeps its
own slice, so N ranks with B/N frames each see exactly the batch one process with B
frames would. What couples the slices is summed over ranks: the batch-mean distribution
of the codebook entropy (inside the forward, with autograd), RVQ's EMA and dead-code
usage statistics, and the gradients (averaged after backward); dead-code replacements
are drawn from the gathered global batch. Losses that are means over frames need nothing more: the mean of equal
slices' means is the batch mean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_reduce

from tokquant.quantizers import BatchOps

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1); True if joined here."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, differentiable (backward sums the gradients over ranks too)."""
    return all_reduce(tensor)


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, no autograd (EMA and usage statistics)."""
    out = tensor.clone()
    dist.all_reduce(out)
    return out


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, concatenated in rank order: the global batch (for dead-code
    replacements drawn from the whole batch, as one process would)."""
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def batch_ops():  # -> tokquant.quantizers.BatchOps
    """How quantizers share batch statistics across the process group."""
    return BatchOps(sum_autograd=all_reduce_sum, sum=sum_over_ranks, gather=gather_rows)


def average_gradients(module: torch.nn.Module, world_size: int) -> None:
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad.div_(world_size)


def mean_over_ranks(value: float, world_size: int) -> float:
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world_size


def in_group(device: torch.device, work: Callable[[int, int], T]) -> tuple[T, int, bool]:
    """``(work(rank, world), rank, joined)``: ``work`` run in the torchrun group this
    process joins here (if ``WORLD_SIZE`` > 1), left once every rank is done (no rank
    leaves while rank 0 still writes), torn down at once if ``work`` fails."""
    joined = init_from_env(device)
    rank, size = world()
    try:
        result = work(rank, size)
    except BaseException:
        if joined:
            dist.destroy_process_group()
        raise
    if joined:
        leave()
    return result, rank, joined


def leave() -> None:
    """Leave the process group once every rank is done talking: a barrier, then destroy."""
    dist.barrier()
    dist.destroy_process_group()


def exit_now(code: int = 0) -> NoReturn:
    """End a rank that has left its group and written everything, skipping interpreter
    teardown. Gloo can still abort in its own C++ teardown after a clean barrier and
    destroy ("terminate called without an active exception", pytorch/gloo#155; about one
    run in twenty on a loaded 2-core machine), which would turn a finished run into a
    failed one for torchrun. Nothing of ours is left to run at exit, so skip it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
