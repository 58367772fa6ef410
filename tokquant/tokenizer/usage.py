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
    """Error of decoded codes against the features they were encoded from. ``mse``,
    ``snr_db`` and ``cosine`` are on the raw features; ``normalized_snr_db`` on the
    features as the tokenizer sees them (each dim standardised by the training frames'
    mean and std), the space README's quality tables and ``scripts/quality.py`` report:
    raw log-mels have a large mean, which lifts the raw SNR by about 10 dB."""

    frames: int
    mse: float
    snr_db: float
    cosine: float
    normalized_snr_db: float | None = None

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

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        """``mean``/``std`` (per dim): the tokenizer's normalisation, for the normalised SNR."""
        self.frames = 0
        self.sq_err = 0.0
        self.sq_ref = 0.0
        self.elements = 0
        self.cos_sum = 0.0
        self.mean = None if mean is None else np.asarray(mean, np.float64)
        self.std = None if std is None else np.asarray(std, np.float64)
        self.sq_ref_norm = 0.0
        self.sq_err_norm = 0.0

    def add(self, reference: np.ndarray, estimate: np.ndarray) -> None:
        ref = reference.astype(np.float64)
        est = estimate.astype(np.float64)
        err = ref - est
        self.frames += ref.shape[0]
        self.elements += ref.size
        self.sq_err += float((err * err).sum())
        self.sq_ref += float((ref * ref).sum())
        if self.mean is not None and self.std is not None:
            self.sq_ref_norm += float((((ref - self.mean) / self.std) ** 2).sum())
            self.sq_err_norm += float(((err / self.std) ** 2).sum())
        denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(est, axis=1)
        cos = np.where(denom > 0, (ref * est).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)
        self.cos_sum += float(cos.sum())

    def result(self) -> ReconstructionStats:
        return ReconstructionStats(
            frames=self.frames,
            mse=self.sq_err / max(self.elements, 1),
            snr_db=_snr(self.sq_ref, self.sq_err),
            cosine=self.cos_sum / max(self.frames, 1),
            normalized_snr_db=None
            if self.mean is None
            else _snr(self.sq_ref_norm, self.sq_err_norm),
        )


def _snr(signal: float, error: float) -> float:
    return 10.0 * math.log10(signal / error) if error > 0 else math.inf
