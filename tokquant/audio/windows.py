"""Fixed windows over a file's frames, for front ends that see a whole window at once
(SSL models, codec encoders): window ``k`` owns frames ``[k W, (k+1) W)`` and is computed
from frames ``[k W - C, (k+1) W + C)`` (clipped to the file), so its features depend only
on the file, never on what else is read with it. A file up to ``W`` frames is one window."""

from __future__ import annotations


def fixed_windows(total: int, window: int, context: int) -> list[tuple[int, int, int, int]]:
    """``(own_start, own_stop, input_start, input_stop)`` frames of each window."""
    out = []
    for f0 in range(0, total, window):
        f1 = min(total, f0 + window)
        out.append((f0, f1, max(0, f0 - context), min(total, f1 + context)))
    return out
