"""One RVQ level's codebook and its training bookkeeping (EMA, dead codes).

Kept apart from the residual loop in :mod:`tokquant.quantizers.rvq`, as EnCodec keeps
its ``EuclideanCodebook`` apart from its ``ResidualVectorQuantization``: the loop asks a
level for its search space, its vectors and its updates, and knows nothing of how they
are kept.

Imported codecs may add a projection into a smaller codebook space (``codebook_dim``)
and cosine lookups (``normalized``, as descript-audio-codec does): the level then
searches ``normalize(W_in r + b_in)`` against normalised codes and contributes
``W_out c + b_out``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Reduce = Callable[[torch.Tensor], torch.Tensor]


class Codebook(nn.Module):
    """``size`` code vectors in a space of ``space_dim`` (the embedding dim unless projected).

    Args:
        ema: keep EMA statistics (the codebook then moves by :meth:`ema_update`, not
            by gradient).
        track_usage: count code usage over a window for dead-code replacement.
        embedding_dim: with ``space_dim != embedding_dim`` or ``projected``, linear maps
            in and out of the codebook space.
    """

    def __init__(
        self,
        size: int,
        space_dim: int,
        embedding_dim: int,
        *,
        ema: bool,
        track_usage: bool,
        projected: bool,
        normalized: bool,
    ) -> None:
        super().__init__()
        self.size = size
        self.normalized = normalized
        self.vectors = nn.Parameter(torch.randn(size, space_dim), requires_grad=not ema)
        self.project_in = nn.Linear(embedding_dim, space_dim) if projected else None
        self.project_out = nn.Linear(space_dim, embedding_dim) if projected else None
        self.ema_count: torch.Tensor | None
        self.ema_sum: torch.Tensor | None
        self.register_buffer("ema_count", torch.ones(size) if ema else None)
        self.register_buffer("ema_sum", self.vectors.detach().clone() if ema else None)
        self.window_count: torch.Tensor | None
        self.register_buffer(
            "window_count", torch.zeros(size) if track_usage else None, persistent=False
        )

    # Lookups ------------------------------------------------------------------------------

    def to_space(self, residual: torch.Tensor) -> torch.Tensor:
        """The residual in codebook space (what EMA moves codes towards)."""
        return self.project_in(residual) if self.project_in is not None else residual

    def search_space(self, residual: torch.Tensor) -> torch.Tensor:
        e = self.to_space(residual)
        return F.normalize(e, dim=-1) if self.normalized else e

    def search_vectors(self, dtype: torch.dtype) -> torch.Tensor:
        c = self.vectors.to(dtype)
        return F.normalize(c, dim=-1) if self.normalized else c

    def lookup(self, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Embedding-space vectors of codes ``idx`` (differentiable in the codebook)."""
        c = self.vectors.to(dtype)[idx]
        return self.project_out(c) if self.project_out is not None else c

    @torch.no_grad()
    def all_vectors(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[K, D]``: every code as the vector it adds to the output."""
        return self.lookup(torch.arange(self.size, device=self.vectors.device), dtype)

    # Training updates ---------------------------------------------------------------------

    @torch.no_grad()
    def ema_update(
        self, target: torch.Tensor, idx: torch.Tensor, decay: float, reduce: Reduce
    ) -> None:
        """Move codes to the EMA of the ``target`` rows assigned to them (summed over ranks
        by ``reduce``)."""
        assert self.ema_count is not None and self.ema_sum is not None
        k = self.size
        idx = idx.contiguous()  # a beam's codes come as columns: a strided index_add_ is 30x slower
        counts = reduce(torch.bincount(idx, minlength=k).to(target.dtype))
        sums = reduce(
            torch.zeros(k, target.shape[1], dtype=target.dtype, device=target.device).index_add_(
                0, idx, target
            )
        )
        self.ema_count.mul_(decay).add_(counts.to(self.ema_count.dtype), alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums.to(self.ema_sum.dtype), alpha=1 - decay)
        # Laplace smoothing keeps never-used codes finite without moving used ones much.
        total = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (total + k * 1e-5) * total
        self.vectors.data.copy_(self.ema_sum / smoothed.unsqueeze(-1))

    @torch.no_grad()
    def count_usage(self, idx: torch.Tensor, reduce: Reduce) -> None:
        assert self.window_count is not None
        self.window_count.add_(
            reduce(torch.bincount(idx, minlength=self.size).to(self.window_count.dtype))
        )

    @torch.no_grad()
    def replace_dead(self, target: torch.Tensor, threshold: float, gather: Reduce | None) -> int:
        """End of a usage window: replace codes used less than ``threshold`` of uniform by
        rows of the batch (``gather`` collects every rank's rows). Runs after the EMA
        update and resets the replaced codes' EMA statistics to the new vector, so the
        replacement is what the codebook holds after this step."""
        assert self.window_count is not None
        expected = self.window_count.sum() / self.size
        dead = (self.window_count < threshold * expected).nonzero().flatten()
        self.window_count.zero_()
        if dead.numel() == 0:
            return 0
        pool = target if gather is None else gather(target)
        pick = torch.randint(pool.shape[0], (dead.numel(),), device=target.device)
        fresh = pool[pick].to(self.vectors.dtype)
        self.vectors.data[dead] = fresh
        if self.ema_count is not None and self.ema_sum is not None:
            self.ema_count[dead] = 1.0
            self.ema_sum[dead] = fresh
        return int(dead.numel())

    @torch.no_grad()
    def reset_to(self, centroids: torch.Tensor) -> None:
        """Start from ``centroids`` (k-means); EMA statistics restart from them."""
        self.vectors.data.copy_(centroids.to(self.vectors.dtype))
        if self.ema_count is not None and self.ema_sum is not None:
            self.ema_count.fill_(1.0)
            self.ema_sum.copy_(centroids)
