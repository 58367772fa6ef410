"""Code columns on disk: ``codes.{g}`` 1-D arrays in the smallest unsigned dtype.

Token files and corpus shards store codes the same way; this module packs them and
range-checks them on the way back, so neither format spells it again.
"""

from __future__ import annotations

import numpy as np


def column_dtype(cardinality: int) -> np.dtype:
    """The smallest unsigned dtype that holds codes ``0 .. cardinality - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if cardinality - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"cardinality {cardinality} does not fit in 64 bits")


def pack_columns(codes: np.ndarray, cardinalities: list[int]) -> dict[str, np.ndarray]:
    """``[T, G]`` codes -> ``{"codes.{g}": [T] column}``."""
    return {
        f"codes.{g}": np.ascontiguousarray(codes[:, g].astype(column_dtype(card)))
        for g, card in enumerate(cardinalities)
    }


def out_of_range(column: np.ndarray, cardinality: int) -> int | None:
    """The largest code of ``column`` if it is not below ``cardinality``, else None."""
    if column.size:
        top = int(column.max())
        if top >= cardinality:
            return top
    return None


def stack_columns(columns: list[np.ndarray], frames: int) -> np.ndarray:
    """Columns -> ``[T, G]`` int64 codes."""
    if not columns:
        return np.zeros((frames, 0), np.int64)
    return np.stack([c.astype(np.int64) for c in columns], axis=1)
