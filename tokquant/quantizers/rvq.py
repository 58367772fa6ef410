"""Residual vector quantisation (helia_edge semantics, histogram metrics, chunked search).

Level ``l`` quantises the residual ``r_l`` to its nearest code ``q_l``; the next
residual is ``r_{l+1} = r_l - sg(q_l)``; the output is the straight-through sum of the
``q_l``. Per level the loss is ``beta * ||sg(q_l) - r_l||^2 + ||q_l - sg(r_l)||^2``
(means over elements), summed over levels.

Codebooks start as standard-normal draws (``torch.randn``, seeded by the caller's
generator state); :meth:`RVQ.init_from_data` replaces them with k-means centroids, level
by level on the residuals, which is what training should use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from tokquant.quantizers.base import (
    Quantizer,
    QuantizerOutput,
    compute_dtype,
    full_precision,
    straight_through,
)
from tokquant.quantizers.functional import DEFAULT_CHUNK_ELEMENTS


def nearest_code(
    x: torch.Tensor,
    codebook: torch.Tensor,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Index of the nearest row of ``codebook`` ``[K, D]`` for each row of ``x`` ``[N, D]``.

    Uses ``argmin_k ||c_k||^2 - 2 <x, c_k>`` (the ``||x||^2`` term does not change the
    argmin) in row chunks so no ``chunk x K`` block exceeds ``chunk_elements``. Ties go to
    the lowest index (``torch.argmin`` returns the first minimum).
    """
    k = codebook.shape[0]
    c_sq = (codebook * codebook).sum(-1)
    step = max(1, chunk_elements // max(k, 1))
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], step):
        rows = x[start : start + step]
        dist = torch.addmm(c_sq, rows, codebook.T, alpha=-2.0)
        out[start : start + step] = dist.argmin(-1)
    return out


def histogram_metrics(idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(perplexity, usage, bits_per_index)`` of one level's indices, from a bincount."""
    counts = torch.bincount(idx, minlength=k).to(torch.float64)
    p = counts / counts.sum().clamp(min=1.0)
    bits = -torch.xlogy(p, p).sum() / math.log(2.0)
    return torch.exp2(bits), (counts > 0).sum() / float(k), bits


class RVQ(Quantizer):
    """Residual vector quantiser.

    Args:
        num_levels: number of residual stages M >= 1.
        num_embeddings: codebook size K, one int or a list of M ints.
        embedding_dim: vector dimension D.
        beta: commitment weight of each level's loss.
        chunk_elements: memory budget (elements) of any ``chunk x K`` distance block.

    Example:
        >>> q = RVQ(4, 256, 64)
        >>> quantized, indices, aux_loss = q(torch.randn(8, 100, 64))
        >>> indices.shape
        torch.Size([8, 100, 4])
    """

    kind = "rvq"

    def __init__(
        self,
        num_levels: int,
        num_embeddings: int | list[int],
        embedding_dim: int,
        beta: float = 0.25,
        *,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    ) -> None:
        super().__init__()
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
            raise ValueError(f"num_levels must be an int >= 1. Found: {num_levels!r}")
        if (
            isinstance(embedding_dim, bool)
            or not isinstance(embedding_dim, int)
            or embedding_dim < 1
        ):
            raise ValueError(f"embedding_dim must be an int >= 1. Found: {embedding_dim!r}")
        if isinstance(num_embeddings, (list, tuple)):
            if len(num_embeddings) != num_levels:
                raise ValueError(
                    f"num_embeddings list must have one size per level "
                    f"(length {num_levels}). Found length {len(num_embeddings)}"
                )
            sizes = list(num_embeddings)
        else:
            sizes = [num_embeddings] * num_levels
        for k in sizes:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"num_embeddings must be ints >= 1. Found: {num_embeddings!r}")
        if not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0. Found: {beta}")
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1. Found: {chunk_elements}")
        self.num_levels = num_levels
        self.num_embeddings = sizes
        self.embedding_dim = embedding_dim
        self.beta = float(beta)
        self.chunk_elements = chunk_elements
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.randn(k, embedding_dim)) for k in sizes]
        )

    @property
    def dim(self) -> int:
        return self.embedding_dim

    @property
    def column_cardinalities(self) -> list[int]:
        return list(self.num_embeddings)

    @property
    def column_names(self) -> list[str]:
        return [f"level{level + 1}" for level in range(self.num_levels)]

    def config(self) -> dict[str, Any]:
        sizes = self.num_embeddings
        return {
            "num_levels": self.num_levels,
            "num_embeddings": sizes[0] if len(set(sizes)) == 1 else list(sizes),
            "embedding_dim": self.embedding_dim,
            "beta": self.beta,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def _codebook(self, level: int, dtype: torch.dtype) -> torch.Tensor:
        return self.codebooks[level].to(dtype)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        self._check_input(x)
        lead_shape = x.shape[:-1]
        with full_precision(x.device):
            flat = x.to(compute_dtype(x)).reshape(-1, self.embedding_dim)
            residual = flat
            q_sum = torch.zeros_like(flat)
            aux = flat.new_zeros(())
            indices = []
            metrics: dict[str, torch.Tensor] = {}
            for level in range(self.num_levels):
                codebook = self._codebook(level, flat.dtype)
                with torch.no_grad():
                    idx = nearest_code(
                        residual.detach(), codebook, chunk_elements=self.chunk_elements
                    )
                q = codebook[idx]
                if flat.shape[0]:
                    commitment = (q.detach() - residual).pow(2).mean()
                    codebook_loss = (q - residual.detach()).pow(2).mean()
                    aux = aux + self.beta * commitment + codebook_loss
                residual = residual - q.detach()
                q_sum = q_sum + q.detach()
                indices.append(idx)
                if flat.shape[0]:
                    perp, usage, bpi = histogram_metrics(idx, self.num_embeddings[level])
                    metrics[f"rvq_l{level + 1}_perplexity"] = perp
                    metrics[f"rvq_l{level + 1}_usage"] = usage
                    metrics[f"rvq_l{level + 1}_bits_per_index"] = bpi
            if metrics:
                m = self.num_levels
                metrics["rvq_perplexity_mean"] = (
                    sum(metrics[f"rvq_l{lv + 1}_perplexity"] for lv in range(m)) / m
                )
                metrics["rvq_usage_mean"] = (
                    sum(metrics[f"rvq_l{lv + 1}_usage"] for lv in range(m)) / m
                )
                metrics["rvq_bits_per_index_sum"] = sum(
                    metrics[f"rvq_l{lv + 1}_bits_per_index"] for lv in range(m)
                )
            # Codebook gradients come from the codebook loss; the output passes the
            # input's gradient straight through.
            quantized = straight_through(q_sum, flat)
        codes = torch.stack(indices, dim=-1)
        return QuantizerOutput(
            quantized=quantized.reshape(*lead_shape, self.embedding_dim),
            indices=codes.reshape(*lead_shape, self.num_levels),
            aux_loss=aux,
            metrics=metrics,
        )

    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_levels: int | None = None) -> torch.Tensor:
        """``[..., D]`` -> ``[..., n]`` int64 codes with ``n = num_levels or M`` (greedy)."""
        self._check_input(x)
        n = self.num_levels if num_levels is None else num_levels
        if not 1 <= n <= self.num_levels:
            raise ValueError(f"num_levels must be in [1, {self.num_levels}]. Found: {n}")
        lead_shape = x.shape[:-1]
        with full_precision(x.device):
            residual = x.to(compute_dtype(x)).reshape(-1, self.embedding_dim).clone()
            cols = []
            for level in range(n):
                codebook = self._codebook(level, residual.dtype)
                idx = nearest_code(residual, codebook, chunk_elements=self.chunk_elements)
                residual -= codebook[idx]
                cols.append(idx)
        return torch.stack(cols, dim=-1).reshape(*lead_shape, n)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[..., n]`` codes (the first ``n <= M`` levels) -> ``[..., D]`` float32 sum."""
        self._check_codes(codes)
        out = None
        for level in range(codes.shape[-1]):
            idx = codes[..., level].to(torch.int64)
            k = self.num_embeddings[level]
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= k):
                raise ValueError(
                    f"codes of level {level + 1} must be in [0, {k}). "
                    f"Found range [{int(idx.min())}, {int(idx.max())}]"
                )
            vec = self.codebooks[level].detach().float()[idx]
            out = vec if out is None else out + vec
        assert out is not None
        return out

    @torch.no_grad()
    def init_from_data(
        self,
        x: torch.Tensor,
        *,
        iters: int = 20,
        generator: torch.Generator | None = None,
    ) -> None:
        """Replace every codebook by k-means centroids of its level's residuals.

        Level ``l`` is fitted on ``x`` minus the reconstruction of levels ``< l`` with the
        codebooks just fitted, so each level starts where the previous one left off.
        """
        from tokquant.quantizers.kmeans import kmeans

        self._check_input(x)
        residual = x.detach().reshape(-1, self.embedding_dim).float().clone()
        for level in range(self.num_levels):
            centroids = kmeans(
                residual,
                self.num_embeddings[level],
                iters=iters,
                generator=generator,
                chunk_elements=self.chunk_elements,
            )
            self.codebooks[level].data.copy_(centroids.to(self.codebooks[level].dtype))
            idx = nearest_code(residual, centroids, chunk_elements=self.chunk_elements)
            residual -= centroids[idx]
