"""The quantizer families behind one interface (:class:`Quantizer`).

Names load on first use, so :mod:`tokquant.quantizers.params` (what a config validates
against) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "BatchOps": "tokquant.quantizers.base",
    "Quantizer": "tokquant.quantizers.base",
    "QuantizerOutput": "tokquant.quantizers.base",
    "BSQ": "tokquant.quantizers.binary",
    "LFQ": "tokquant.quantizers.binary",
    "FSQ": "tokquant.quantizers.fsq",
    "RVQ": "tokquant.quantizers.rvq",
    "Params": "tokquant.quantizers.params",
    "QUANTIZERS": "tokquant.quantizers.families",
    "build_quantizer": "tokquant.quantizers.families",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from tokquant.quantizers.base import BatchOps, Quantizer, QuantizerOutput  # noqa: F401
    from tokquant.quantizers.binary import BSQ, LFQ  # noqa: F401
    from tokquant.quantizers.families import QUANTIZERS, build_quantizer  # noqa: F401
    from tokquant.quantizers.fsq import FSQ  # noqa: F401
    from tokquant.quantizers.params import Params  # noqa: F401
    from tokquant.quantizers.rvq import RVQ  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokquant.quantizers' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
