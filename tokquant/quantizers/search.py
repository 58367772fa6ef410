"""Finding codes: the nearest code of one level, and beam search over residual levels.

Both are pure functions of tensors; :class:`~tokquant.quantizers.rvq.RVQ` and k-means
call them. The nearest-code search is ``argmin_k ||c_k||^2 - 2 <x, c_k>`` (``||x||^2``
does not change the argmin) in row blocks sized for memory (CUDA) or cache (CPU); ties go
to the lowest index, as ``torch.argmin`` does.

Beam search: after level ``l`` every candidate sequence has a residual
``r = x - sum_{j<=l} q_j`` and a score ``||r||^2``. Each of the B candidates is extended
by every code of the next level and the B best of the ``B * K`` extensions survive; ties
keep the earlier candidate and the lower code (a stable sort), so the result is
deterministic. With B >= K^(M-1) this is an exhaustive search.
"""

from __future__ import annotations

import torch

from tokquant.quantizers.functional import DEFAULT_CHUNK_ELEMENTS
from tokquant.quantizers.fused_search import fused_nearest_code

#: Row blocks of the CPU matmul search hold at most this many distances (4 MiB of
#: float32), so a block is still in cache when argmin reads it back: at 8 x 1024 codes,
#: dim 128 this made RVQ encode 1.5x faster on a 2-core EPYC than 64 MiB blocks.
CPU_SEARCH_BLOCK_ELEMENTS = 1 << 20

#: "matmul" is blocked ``addmm`` + ``argmin`` on any device; "fused" runs
#: :mod:`tokquant.quantizers.fused_search` (one Triton kernel, no distance blocks in
#: memory) for float32 CUDA tensors and the matmul search elsewhere.
SEARCH_METHODS = ("matmul", "fused")


def nearest_code(
    x: torch.Tensor,
    codebook: torch.Tensor,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    method: str = "matmul",
) -> torch.Tensor:
    """Index of the nearest row of ``codebook`` ``[K, D]`` for each row of ``x`` ``[N, D]``.

    No ``rows x K`` block exceeds ``chunk_elements`` (nor
    :data:`CPU_SEARCH_BLOCK_ELEMENTS` on CPU).
    """
    if method not in SEARCH_METHODS:
        raise ValueError(f"method must be one of {SEARCH_METHODS}. Found: {method!r}")
    if method == "fused" and x.is_cuda and x.dtype == codebook.dtype == torch.float32:
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


def beam_search(
    x: torch.Tensor,
    levels: list[torch.Tensor],
    beam: int,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Codes ``[N, M]`` for ``x`` ``[N, D]`` over code vectors ``levels[l]`` ``[K_l, D]``."""
    k_max = max(c.shape[0] for c in levels)
    step = max(1, chunk_elements // (beam * k_max))
    out = torch.empty(x.shape[0], len(levels), dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], step):
        out[start : start + step] = _beam_block(x[start : start + step], levels, beam)
    return out


def _beam_block(x: torch.Tensor, levels: list[torch.Tensor], beam: int) -> torch.Tensor:
    residual = x[:, None, :]  # [n, b, D], b = 1 to start
    codes = torch.zeros(x.shape[0], 1, 0, dtype=torch.int64, device=x.device)
    for vectors in levels:
        residual, parent, code = beam_extend(residual, vectors, beam)
        rows = torch.arange(x.shape[0], device=x.device)[:, None]
        codes = torch.cat([codes[rows, parent], code.unsqueeze(-1)], dim=-1)
    return codes[:, 0, :]


def beam_extend(
    residual: torch.Tensor, vectors: torch.Tensor, beam: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of beam search: every candidate of ``residual`` ``[n, b, D]`` extended by
    every row of ``vectors`` ``[K, D]``, the ``beam`` best kept (best first). Returns the
    new residuals ``[n, b', D]``, each survivor's parent candidate and its code ``[n, b']``."""
    n, k = residual.shape[0], vectors.shape[0]
    flat = residual.reshape(-1, residual.shape[-1])
    r_sq = (flat * flat).sum(-1, keepdim=True)
    # one pass for r² - 2<r, c>, one for + c²: [n * b, K], read as [n, b * K]
    err = torch.addmm(r_sq, flat, vectors.T, alpha=-2.0).add_((vectors * vectors).sum(-1))
    keep = _smallest(err.view(n, -1), beam)
    parent, code = keep // k, keep % k
    rows = torch.arange(n, device=residual.device)[:, None]
    return residual[rows, parent] - vectors[code], parent, code


def _smallest(flat: torch.Tensor, beam: int) -> torch.Tensor:
    """Column indices of each row's ``beam`` smallest values, smallest first, ties in
    index order (what a stable sort gives). ``topk`` is 20x faster than sorting the
    ``b * K`` candidates but orders ties arbitrarily, so rows with a tie inside the kept
    values or at their edge are sorted."""
    k = min(beam, flat.shape[1])
    # One value past the kept ones: a tie at the edge is that value equal to the last kept.
    values, keep = torch.topk(flat, min(k + 1, flat.shape[1]), dim=1, largest=False, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]).any(1)
    keep = keep[:, :k]
    if tied.any():
        keep[tied] = torch.sort(flat[tied], dim=1, stable=True).indices[:, :k]
    return keep
