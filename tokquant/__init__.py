"""tokquant: turn audio and feature sequences into discrete tokens and back.

Importing the package is cheap: the torch-backed classes load on first use, so the CLI
answers ``--help`` without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load": "tokquant.api",
    "Tokenizer": "tokquant.tokenizer",
    "Corpus": "tokquant.formats.corpus",
    "TokenDataset": "tokquant.data",
    "BSQ": "tokquant.quantizers",
    "FSQ": "tokquant.quantizers",
    "LFQ": "tokquant.quantizers",
    "RVQ": "tokquant.quantizers",
    "Quantizer": "tokquant.quantizers",
    "QuantizerOutput": "tokquant.quantizers",
}

__all__ = [*_LAZY, "__version__"]

if TYPE_CHECKING:
    from tokquant.api import load  # noqa: F401
    from tokquant.data import TokenDataset  # noqa: F401
    from tokquant.formats.corpus import Corpus  # noqa: F401
    from tokquant.quantizers import BSQ, FSQ, LFQ, RVQ, Quantizer, QuantizerOutput  # noqa: F401
    from tokquant.tokenizer.model import Tokenizer  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tokquant' has no attribute {name!r}")

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
