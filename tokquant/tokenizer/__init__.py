"""The tokenizer: tokquant's central model and everything that is its own.

``model`` (normalise, project, quantize, project back), ``config`` (schema, front end,
strict YAML), ``checkpoint`` (the model's own load and save; the bytes are
``formats.checkpoint``'s), ``training``, ``importers`` (peers' RVQ codebooks) and
``usage`` (codebook statistics). Importing the package is cheap: the model loads on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokquant.tokenizer.model import Tokenizer  # noqa: F401

__all__ = ["DEFAULT_BATCH_FRAMES", "Tokenizer"]

#: Frames per encode call unless told (``encode --batch-frames``, ``encode_audio``, the
#: Ray Data and ``datasets.map`` callables): codes never depend on it (see ``model``).
DEFAULT_BATCH_FRAMES = 1 << 16


def __getattr__(name: str) -> Any:
    if name != "Tokenizer":
        raise AttributeError(f"module 'tokquant.tokenizer' has no attribute {name!r}")

    return importlib.import_module("tokquant.tokenizer.model").Tokenizer
