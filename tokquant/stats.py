"""Codebook usage and reconstruction numbers, as dataclasses (printing is the CLI's job)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

#: Columns up to this cardinality are counted with a dense bincount, wider ones sparsely.
DENSE_MAX = 1 << 24


@dataclass
class ColumnStats:
    """Usage of one code column (an RVQ level or a BSQ/LFQ bit group) over many tokens."""

    name: str
    cardinality: int
    tokens: int
    used: int
    dead: int
    usage: float
    entropy_bits: float
    max_entropy_bits: float
    perplexity: float
    top: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReconstructionStats:
    frames: int
    mse: float
    snr_db: float
    cosine: float

    def to_dict(self) -> dict:
        return asdict(self)


def column_stats(codes: np.ndarray, cardinality: int, name: str, top_k: int = 5) -> ColumnStats:
    """Usage, dead codes, entropy (bits) and perplexity of ``codes`` ``[N]``."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    n = int(codes.size)
    if cardinality <= DENSE_MAX:
        counts = np.bincount(codes, minlength=cardinality)
        nonzero = np.flatnonzero(counts)
        values, hits = nonzero, counts[nonzero]
    else:
        values, hits = np.unique(codes, return_counts=True)
    p = hits / max(n, 1)
    entropy = float(-(p * np.log2(p)).sum()) if n else 0.0
    order = np.lexsort((values, -hits))[:top_k]  # most frequent first, ties by code
    return ColumnStats(
        name=name,
        cardinality=cardinality,
        tokens=n,
        used=int(values.size),
        dead=cardinality - int(values.size),
        usage=values.size / cardinality,
        entropy_bits=entropy,
        max_entropy_bits=math.log2(cardinality),
        perplexity=2.0**entropy,
        top=[(int(values[i]), int(hits[i])) for i in order],
    )


class ReconstructionAccumulator:
    """Sums over many files so the totals equal one computation over all frames."""

    def __init__(self) -> None:
        self.frames = 0
        self.sq_err = 0.0
        self.sq_ref = 0.0
        self.elements = 0
        self.cos_sum = 0.0

    def add(self, reference: np.ndarray, estimate: np.ndarray) -> None:
        ref = reference.astype(np.float64)
        est = estimate.astype(np.float64)
        err = ref - est
        self.frames += ref.shape[0]
        self.elements += ref.size
        self.sq_err += float((err * err).sum())
        self.sq_ref += float((ref * ref).sum())
        denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(est, axis=1)
        cos = np.where(denom > 0, (ref * est).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)
        self.cos_sum += float(cos.sum())

    def result(self) -> ReconstructionStats:
        snr = 10.0 * math.log10(self.sq_ref / self.sq_err) if self.sq_err > 0 else math.inf
        return ReconstructionStats(
            frames=self.frames,
            mse=self.sq_err / max(self.elements, 1),
            snr_db=snr,
            cosine=self.cos_sum / max(self.frames, 1),
        )
