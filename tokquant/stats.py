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


class UsageCounter:
    """Code histograms per column, accumulated file by file (memory: the histograms)."""

    def __init__(self, cardinalities: list[int]) -> None:
        self.cardinalities = cardinalities
        self.dense = [np.zeros(c, np.int64) if c <= DENSE_MAX else None for c in cardinalities]
        self.sparse: list[dict[int, int]] = [{} for _ in cardinalities]
        self.tokens = 0

    def add(self, codes: np.ndarray) -> None:
        """``codes`` ``[T, G]`` integer."""
        self.tokens += int(codes.shape[0])
        for g, card in enumerate(self.cardinalities):
            col = np.asarray(codes[:, g], dtype=np.int64)
            if self.dense[g] is not None:
                self.dense[g] += np.bincount(col, minlength=card)
            else:
                values, hits = np.unique(col, return_counts=True)
                table = self.sparse[g]
                for v, h in zip(values.tolist(), hits.tolist(), strict=True):
                    table[v] = table.get(v, 0) + h

    def histogram(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """Codes seen in column ``g`` (ascending) and how often."""
        if self.dense[g] is not None:
            values = np.flatnonzero(self.dense[g])
            return values, self.dense[g][values]
        items = sorted(self.sparse[g].items())
        return np.array([v for v, _ in items], np.int64), np.array([h for _, h in items], np.int64)

    def result(self, names: list[str], top_k: int = 5) -> list[ColumnStats]:
        out = []
        for g, (name, card) in enumerate(zip(names, self.cardinalities, strict=True)):
            values, hits = self.histogram(g)
            n = self.tokens
            p = hits / max(n, 1)
            entropy = float(-(p * np.log2(p)).sum()) if n else 0.0
            order = np.lexsort((values, -hits))[:top_k]  # most frequent first, ties by code
            out.append(
                ColumnStats(
                    name=name,
                    cardinality=card,
                    tokens=n,
                    used=int(values.size),
                    dead=card - int(values.size),
                    usage=values.size / card,
                    entropy_bits=entropy,
                    max_entropy_bits=math.log2(card),
                    perplexity=2.0**entropy,
                    top=[(int(values[i]), int(hits[i])) for i in order],
                )
            )
        return out


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
