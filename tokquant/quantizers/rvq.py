"""Residual vector quantisation (helia_edge semantics, histogram metrics, chunked search).

Level ``l`` quantises the residual ``r_l`` to its nearest code ``q_l``; the next
residual is ``r_{l+1} = r_l - sg(q_l)``; the output is the straight-through sum of the
``q_l``. Per level the loss is ``beta * ||sg(q_l) - r_l||^2 + ||q_l - sg(r_l)||^2``
(means over elements), summed over levels.

Codebooks start as standard-normal draws (``torch.randn``, seeded by the caller's
generator state); :meth:`RVQ.init_from_data` replaces them with k-means centroids, level
by level on the residuals, which is what training should use.

Training options: EMA codebook updates instead of gradients (``ema_decay``), dead-code
replacement (``dead_code_threshold``), and quantizer dropout (``quantizer_dropout``: a
random number of levels per batch, so every prefix of levels decodes well). Encoding
options: fewer levels, and beam search (:mod:`tokquant.quantizers.beam`).

Imported codecs may add a per-level projection into a smaller codebook space
(``codebook_dim``) and cosine lookups (``normalized``, as descript-audio-codec does):
level ``l`` then searches ``normalize(W_in r + b_in)`` against normalised codes and
contributes ``W_out c + b_out``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tokquant.quantizers.base import (
    Quantizer,
    QuantizerOutput,
    compute_dtype,
    full_precision,
    straight_through,
)
from tokquant.quantizers.functional import DEFAULT_CHUNK_ELEMENTS

#: Row blocks of the CPU matmul search hold at most this many distances (4 MiB of
#: float32), so a block is still in cache when argmin reads it back: at 8 x 1024 codes,
#: dim 128 this made RVQ encode 1.5x faster on a 2-core EPYC than 64 MiB blocks.
CPU_SEARCH_BLOCK_ELEMENTS = 1 << 20

#: How :class:`RVQ` finds each level's nearest code: "matmul" is chunked ``addmm`` +
#: ``argmin`` on any device; "fused" runs :mod:`tokquant.quantizers.fused_search` (one
#: Triton kernel, no distance blocks in memory) for float32 CUDA tensors and the matmul
#: search elsewhere.
SEARCH_METHODS = ("matmul", "fused")


def nearest_code(
    x: torch.Tensor,
    codebook: torch.Tensor,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    method: str = "matmul",
) -> torch.Tensor:
    """Index of the nearest row of ``codebook`` ``[K, D]`` for each row of ``x`` ``[N, D]``.

    Uses ``argmin_k ||c_k||^2 - 2 <x, c_k>`` (the ``||x||^2`` term does not change the
    argmin) in row chunks so no ``chunk x K`` block exceeds ``chunk_elements`` (nor
    :data:`CPU_SEARCH_BLOCK_ELEMENTS` on CPU). Ties go to the lowest index
    (``torch.argmin`` returns the first minimum). ``method`` is one of
    :data:`SEARCH_METHODS`.
    """
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {SEARCH_METHODS}. Found: {method!r}")
    if method == "fused" and x.is_cuda and x.dtype == codebook.dtype == torch.float32:
        from tokquant.quantizers.fused_search import fused_nearest_code

        return fused_nearest_code(x, codebook)
    k = codebook.shape[0]
    c_sq = (codebook * codebook).sum(-1)
    block = chunk_elements if x.is_cuda else min(chunk_elements, CPU_SEARCH_BLOCK_ELEMENTS)
    step = max(1, block // max(k, 1))
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
        ema_decay: ``None`` trains codebooks by gradient (the codebook loss); a decay in
            (0, 1) updates them as exponential moving averages of their residuals instead.
        dead_code_threshold: every ``dead_code_window`` training steps, a code used less
            than this fraction of uniform usage (``total / K``) over the window is
            replaced by a residual from the current batch; 0 disables it.
        quantizer_dropout: probability that a training batch uses a random number of
            levels ``n ~ U{1..M}`` instead of all M.
        codebook_dim: per-level projection into a codebook space of this size (imports).
        normalized: cosine lookups in the codebook space (imports).
        chunk_elements: memory budget (elements) of any ``chunk x K`` distance block.
        search: nearest-code search, one of :data:`SEARCH_METHODS`; a runtime choice
            like ``chunk_elements``, not part of the model (checkpoints do not store it).

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
        ema_decay: float | None = None,
        dead_code_threshold: float = 0.0,
        dead_code_window: int = 100,
        quantizer_dropout: float = 0.0,
        codebook_dim: int | None = None,
        normalized: bool = False,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        search: str = "matmul",
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
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or in (0, 1). Found: {ema_decay}")
        if not 0.0 <= dead_code_threshold < 1.0:
            raise ValueError(f"dead_code_threshold must be in [0, 1). Found: {dead_code_threshold}")
        if dead_code_window < 1:
            raise ValueError(f"dead_code_window must be >= 1. Found: {dead_code_window}")
        if not 0.0 <= quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be in [0, 1]. Found: {quantizer_dropout}")
        if codebook_dim is not None and codebook_dim < 1:
            raise ValueError(f"codebook_dim must be None or >= 1. Found: {codebook_dim}")
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1. Found: {chunk_elements}")
        if search not in SEARCH_METHODS:
            raise ValueError(f"search must be one of {SEARCH_METHODS}. Found: {search!r}")
        self.num_levels = num_levels
        self.num_embeddings = sizes
        self.embedding_dim = embedding_dim
        self.beta = float(beta)
        self.ema_decay = ema_decay
        self.dead_code_threshold = float(dead_code_threshold)
        self.dead_code_window = int(dead_code_window)
        self.quantizer_dropout = float(quantizer_dropout)
        self.codebook_dim = codebook_dim
        self.normalized = bool(normalized)
        self.chunk_elements = chunk_elements
        self.search = search
        space = codebook_dim or embedding_dim
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.randn(k, space), requires_grad=ema_decay is None) for k in sizes]
        )
        if codebook_dim is not None:
            self.project_in = nn.ModuleList([nn.Linear(embedding_dim, space) for _ in sizes])
            self.project_out = nn.ModuleList([nn.Linear(space, embedding_dim) for _ in sizes])
        if ema_decay is not None:
            for level, k in enumerate(sizes):
                self.register_buffer(f"ema_count_{level}", torch.ones(k))
                self.register_buffer(f"ema_sum_{level}", self.codebooks[level].detach().clone())
        if dead_code_threshold > 0:
            for level, k in enumerate(sizes):
                self.register_buffer(f"window_count_{level}", torch.zeros(k), persistent=False)
            self.register_buffer(
                "window_steps", torch.zeros((), dtype=torch.int64), persistent=False
            )
        #: Set by data-parallel training: sums a tensor over ranks (EMA and usage
        #: statistics), and gathers every rank's rows (replacements come from the
        #: global batch, so every rank, and a single process, pick the same vectors).
        self.batch_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.batch_gather: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def dim(self) -> int:
        return self.embedding_dim

    @property
    def column_cardinalities(self) -> list[int]:
        return list(self.num_embeddings)

    @property
    def column_names(self) -> list[str]:
        return [f"level{level + 1}" for level in range(self.num_levels)]

    @property
    def plain(self) -> bool:
        """Codes live in the embedding space and are searched by Euclidean distance."""
        return self.codebook_dim is None and not self.normalized

    def config(self) -> dict[str, Any]:
        sizes = self.num_embeddings
        out: dict[str, Any] = {
            "num_levels": self.num_levels,
            "num_embeddings": sizes[0] if len(set(sizes)) == 1 else list(sizes),
            "embedding_dim": self.embedding_dim,
            "beta": self.beta,
        }
        optional = {
            "ema_decay": (self.ema_decay, None),
            "dead_code_threshold": (self.dead_code_threshold, 0.0),
            "dead_code_window": (self.dead_code_window, 100),
            "quantizer_dropout": (self.quantizer_dropout, 0.0),
            "codebook_dim": (self.codebook_dim, None),
            "normalized": (self.normalized, False),
        }
        out.update({k: v for k, (v, default) in optional.items() if v != default})
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    # Levels ---------------------------------------------------------------------------

    def _search_space(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        """Where level ``level`` looks up codes for ``residual`` (projected, normalised)."""
        e = self.project_in[level](residual) if self.codebook_dim is not None else residual
        return F.normalize(e, dim=-1) if self.normalized else e

    def _search_codebook(self, level: int, dtype: torch.dtype) -> torch.Tensor:
        c = self.codebooks[level].to(dtype)
        return F.normalize(c, dim=-1) if self.normalized else c

    def _vectors(self, level: int, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Embedding-space vectors of codes ``idx`` (differentiable in the codebook)."""
        c = self.codebooks[level].to(dtype)[idx]
        return self.project_out[level](c) if self.codebook_dim is not None else c

    def level_vectors(self, level: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[K, D]``: every code of a level as the vector it adds to the output."""
        with torch.no_grad():
            idx = torch.arange(self.num_embeddings[level], device=self.codebooks[level].device)
            return self._vectors(level, idx, dtype)

    def _nearest(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return nearest_code(
                self._search_space(level, residual),
                self._search_codebook(level, residual.dtype),
                chunk_elements=self.chunk_elements,
                method=self.search,
            )

    # Forward ----------------------------------------------------------------------------

    def _active_levels(self) -> int:
        if self.training and self.quantizer_dropout > 0:
            if float(torch.rand(())) < self.quantizer_dropout:
                return int(torch.randint(1, self.num_levels + 1, ()))
        return self.num_levels

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        """Quantise ``x`` ``[..., D]``; in training, also apply EMA updates, dead-code
        replacement and quantizer dropout when configured. ``indices`` always has M
        columns; levels dropped in this batch hold -1."""
        self._check_input(x)
        lead_shape = x.shape[:-1]
        active = self._active_levels()
        with full_precision(x.device):
            flat = x.to(compute_dtype(x)).reshape(-1, self.embedding_dim)
            residual = flat
            q_sum = torch.zeros_like(flat)
            aux = flat.new_zeros(())
            indices = []
            metrics: dict[str, torch.Tensor] = {}
            replaced = 0
            for level in range(active):
                idx = self._nearest(level, residual.detach())
                q = self._vectors(level, idx, flat.dtype)
                if flat.shape[0]:
                    commitment = (q.detach() - residual).pow(2).mean()
                    aux = aux + self.beta * commitment
                    if self.ema_decay is None or self.codebook_dim is not None:
                        aux = aux + (q - residual.detach()).pow(2).mean()
                if self.training and flat.shape[0]:
                    target = self._ema_target(level, residual.detach())
                    if self.ema_decay is not None:
                        self._ema_update(level, target, idx)
                    if self.dead_code_threshold > 0:
                        replaced += self._replace_dead_codes(level, target, idx)
                residual = residual - q.detach()
                q_sum = q_sum + q.detach()
                indices.append(idx)
                if flat.shape[0]:
                    perp, usage, bpi = histogram_metrics(idx, self.num_embeddings[level])
                    metrics[f"rvq_l{level + 1}_perplexity"] = perp
                    metrics[f"rvq_l{level + 1}_usage"] = usage
                    metrics[f"rvq_l{level + 1}_bits_per_index"] = bpi
            if self.training and self.dead_code_threshold > 0:
                self._end_window_step()
            if metrics:
                m = active
                metrics["rvq_perplexity_mean"] = (
                    sum(metrics[f"rvq_l{lv + 1}_perplexity"] for lv in range(m)) / m
                )
                metrics["rvq_usage_mean"] = (
                    sum(metrics[f"rvq_l{lv + 1}_usage"] for lv in range(m)) / m
                )
                metrics["rvq_bits_per_index_sum"] = sum(
                    metrics[f"rvq_l{lv + 1}_bits_per_index"] for lv in range(m)
                )
                metrics["rvq_active_levels"] = torch.tensor(float(active))
                if self.dead_code_threshold > 0:
                    metrics["rvq_dead_codes_replaced"] = torch.tensor(float(replaced))
            # Codebook gradients come from the codebook loss; the output passes the
            # input's gradient straight through.
            quantized = straight_through(q_sum, flat)
        for _ in range(active, self.num_levels):
            indices.append(torch.full_like(indices[0], -1))
        codes = torch.stack(indices, dim=-1)
        return QuantizerOutput(
            quantized=quantized.reshape(*lead_shape, self.embedding_dim),
            indices=codes.reshape(*lead_shape, self.num_levels),
            aux_loss=aux,
            metrics=metrics,
        )

    # EMA and dead codes -----------------------------------------------------------------

    def _ema_target(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        """What a code of this level should move towards: the residual in codebook space."""
        with torch.no_grad():
            if self.codebook_dim is not None:
                return self.project_in[level](residual)
            return residual

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        return t if self.batch_reduce is None else self.batch_reduce(t)

    @torch.no_grad()
    def _ema_update(self, level: int, target: torch.Tensor, idx: torch.Tensor) -> None:
        k = self.num_embeddings[level]
        counts = self._sum(torch.bincount(idx, minlength=k).to(target.dtype))
        sums = self._sum(torch.zeros(k, target.shape[1], dtype=target.dtype, device=target.device)
                         .index_add_(0, idx, target))  # fmt: skip
        decay = self.ema_decay
        ema_count = getattr(self, f"ema_count_{level}")
        ema_sum = getattr(self, f"ema_sum_{level}")
        ema_count.mul_(decay).add_(counts.to(ema_count.dtype), alpha=1 - decay)
        ema_sum.mul_(decay).add_(sums.to(ema_sum.dtype), alpha=1 - decay)
        # Laplace smoothing keeps never-used codes finite without moving used ones much.
        total = ema_count.sum()
        smoothed = (ema_count + 1e-5) / (total + k * 1e-5) * total
        self.codebooks[level].data.copy_(ema_sum / smoothed.unsqueeze(-1))

    @torch.no_grad()
    def _replace_dead_codes(self, level: int, target: torch.Tensor, idx: torch.Tensor) -> int:
        """Count usage; at the end of a window replace rarely used codes. Runs after the
        EMA update, and resets the replaced codes' EMA statistics to the new vector, so
        the replacement is what the codebook holds after this step."""
        k = self.num_embeddings[level]
        window = getattr(self, f"window_count_{level}")
        window.add_(self._sum(torch.bincount(idx, minlength=k).to(window.dtype)))
        if int(self.window_steps) + 1 < self.dead_code_window:
            return 0
        expected = window.sum() / k
        dead = (window < self.dead_code_threshold * expected).nonzero().flatten()
        window.zero_()
        if dead.numel() == 0:
            return 0
        pool = target if self.batch_gather is None else self.batch_gather(target)
        pick = torch.randint(pool.shape[0], (dead.numel(),), device=target.device)
        fresh = pool[pick]
        self.codebooks[level].data[dead] = fresh.to(self.codebooks[level].dtype)
        if self.ema_decay is not None:
            getattr(self, f"ema_count_{level}")[dead] = 1.0
            getattr(self, f"ema_sum_{level}")[dead] = fresh.to(self.codebooks[level].dtype)
        return int(dead.numel())

    def _end_window_step(self) -> None:
        self.window_steps.add_(1)
        if int(self.window_steps) >= self.dead_code_window:
            self.window_steps.zero_()

    # Encode / decode --------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_levels: int | None = None, beam: int = 1) -> torch.Tensor:
        """``[..., D]`` -> ``[..., n]`` int64 codes with ``n = num_levels or M``.

        ``beam > 1`` keeps the ``beam`` best partial code sequences per vector, ranked by
        the reconstruction error so far (:func:`tokquant.quantizers.beam.beam_search`);
        ``beam = 1`` is the greedy search. Beam search needs plain levels.
        """
        self._check_input(x)
        n = self.num_levels if num_levels is None else num_levels
        if not 1 <= n <= self.num_levels:
            raise ValueError(f"num_levels must be in [1, {self.num_levels}]. Found: {n}")
        if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
            raise ValueError(f"beam must be an int >= 1. Found: {beam!r}")
        if beam > 1 and not self.plain:
            raise ValueError("beam search needs plain levels (no codebook_dim, not normalized)")
        lead_shape = x.shape[:-1]
        with full_precision(x.device):
            residual = x.to(compute_dtype(x)).reshape(-1, self.embedding_dim).clone()
            if beam > 1:
                from tokquant.quantizers.beam import beam_search

                levels = [self.level_vectors(lv, residual.dtype) for lv in range(n)]
                codes = beam_search(residual, levels, beam, chunk_elements=self.chunk_elements)
                return codes.reshape(*lead_shape, n)
            cols = []
            for level in range(n):
                idx = self._nearest(level, residual)
                residual -= self._vectors(level, idx, residual.dtype)
                cols.append(idx)
        return torch.stack(cols, dim=-1).reshape(*lead_shape, n)

    @torch.no_grad()
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
            vec = self._vectors(level, idx, torch.float32)
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
        EMA statistics restart from the centroids.
        """
        from tokquant.quantizers.kmeans import kmeans

        self._check_input(x)
        if not self.plain:
            raise ValueError(
                "k-means initialisation needs plain levels (no codebook_dim, not normalized)"
            )
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
            if self.ema_decay is not None:
                getattr(self, f"ema_count_{level}").fill_(1.0)
                getattr(self, f"ema_sum_{level}").copy_(centroids)
            idx = nearest_code(residual, centroids, chunk_elements=self.chunk_elements)
            residual -= centroids[idx]
