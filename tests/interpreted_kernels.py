"""Runs tokquant's Triton kernels under Triton's interpreter, in a process of its own.

Triton decides at import whether its own library functions (``tl.zeros``, ``tl.min``)
are compiled or interpreted, so one process cannot hold both: the CUDA tests need the
compiled kernel, and the interpreted one (numpy semantics of the same program, on CPU
tensors) runs in a spawned worker that sets ``TRITON_INTERPRET=1`` before importing it.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def start_worker() -> None:
    os.environ["TRITON_INTERPRET"] = "1"


def fused_nearest_code(
    x: torch.Tensor, codebook: torch.Tensor, kwargs: dict[str, Any]
) -> torch.Tensor:
    from tokquant.quantizers.fused_search import fused_nearest_code

    return fused_nearest_code(x, codebook, **kwargs)
