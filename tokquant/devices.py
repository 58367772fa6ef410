"""Turn a ``--device`` string into a torch.device, or a clear error."""

from __future__ import annotations

import math
import os
import re

import torch

from tokquant.checks import machine_memory
from tokquant.errors import DeviceError


def resolve_device(spec: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present, else CPU).

    Plain ``cuda`` (or ``auto``) under torchrun means this process's GPU, ``LOCAL_RANK``.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and "LOCAL_RANK" in os.environ:
        spec = f"cuda:{os.environ['LOCAL_RANK']}"
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise DeviceError(f"`device` must be cpu, cuda, cuda:N or auto, found {spec!r}")
    if not torch.cuda.is_available():
        raise DeviceError(f"`device={spec!r}`: CUDA is not available on this machine")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"`device={spec!r}`: only {count} CUDA device(s) present")
    return torch.device("cuda", index)


def memory_bytes(device: torch.device) -> int:
    """The memory a device has in all: the GPU's, or the machine's RAM for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return machine_memory()


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask (``taskset``, a SLURM or
    container cpuset), ``SLURM_CPUS_PER_TASK`` and the cgroup's CPU quota, whichever is
    least. torch's default (every core of the machine) oversubscribes a shared node:
    on a busy 2-core box each step ran 2-15x slower than with one thread."""
    try:
        counts = [len(os.sched_getaffinity(0))]
    except (AttributeError, OSError):
        counts = [os.cpu_count() or 1]
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        counts.append(int(slurm))
    quota = _cgroup_quota()
    if quota is not None:
        counts.append(quota)
    return max(1, min(counts))


def _cgroup_quota() -> int | None:
    """CPUs the cgroup's quota allows (rounded up), or None where it sets none."""
    for path, period_path in (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            with open(path, encoding="ascii") as fh:  # a kernel file, not a user's
                fields = fh.read().split()
            if period_path is not None:
                with open(period_path, encoding="ascii") as fh:
                    fields.append(fh.read().strip())
        except OSError:
            continue
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit() and int(fields[1]):
            return max(1, math.ceil(int(fields[0]) / int(fields[1])))
        return None
    return None


def use_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads for this process and return how many: ``threads``, else
    ``OMP_NUM_THREADS`` where the user set it, else :func:`usable_cpus`."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1. Found: {threads!r}")
        count = threads
    elif os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        count = max(1, int(os.environ["OMP_NUM_THREADS"].strip()))
    else:
        count = usable_cpus()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
