"""Tokens for training code: layouts (offsets, interleave, delay, dedup) and a torch Dataset.

Example:
    >>> from tokquant.data import TokenDataset, unflatten
"""

from tokquant.data.dataset import TokenDataset, collate_tokens
from tokquant.data.layouts import LAYOUTS, TokenBatch, TokenLayout, flatten, unflatten

__all__ = [
    "LAYOUTS",
    "TokenBatch",
    "TokenDataset",
    "TokenLayout",
    "collate_tokens",
    "flatten",
    "unflatten",
]
