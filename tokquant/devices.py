"""Turn a ``--device`` string into a torch.device, or a clear error."""

from __future__ import annotations

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
