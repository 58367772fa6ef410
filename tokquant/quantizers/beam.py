"""Beam search over residual levels: keep the B best partial code sequences per vector.

After level ``l`` every candidate sequence has a residual ``r = x - sum_{j<=l} q_j``; its
score is the reconstruction error so far, ``||r||^2``. Each of the B candidates is
extended by every code of the next level (``||r||^2 - 2<r, c> + ||c||^2``) and the B best
of the ``B * K`` extensions survive; ties keep the earlier candidate and the lower code
(a stable sort), so the result is deterministic. The best sequence after the last level
is returned. With B >= K^(M-1) this is an exhaustive search.
"""

from __future__ import annotations

import torch


def beam_search(
    x: torch.Tensor,
    levels: list[torch.Tensor],
    beam: int,
    *,
    chunk_elements: int = 1 << 24,
) -> torch.Tensor:
    """Codes ``[N, M]`` for ``x`` ``[N, D]`` over code vectors ``levels[l]`` ``[K_l, D]``."""
    k_max = max(c.shape[0] for c in levels)
    step = max(1, chunk_elements // (beam * k_max))
    out = torch.empty(x.shape[0], len(levels), dtype=torch.int64, device=x.device)
    for start in range(0, x.shape[0], step):
        out[start : start + step] = _search(x[start : start + step], levels, beam)
    return out


def _search(x: torch.Tensor, levels: list[torch.Tensor], beam: int) -> torch.Tensor:
    n = x.shape[0]
    residual = x[:, None, :]  # [n, b, D], b = 1 to start
    codes = torch.zeros(n, 1, 0, dtype=torch.int64, device=x.device)
    rows = torch.arange(n, device=x.device)[:, None]
    for vectors in levels:
        k = vectors.shape[0]
        c_sq = (vectors * vectors).sum(-1)
        r_sq = (residual * residual).sum(-1, keepdim=True)
        err = r_sq - 2.0 * residual @ vectors.T + c_sq  # [n, b, K]
        flat = err.reshape(n, -1)
        keep = torch.sort(flat, dim=1, stable=True).indices[:, : min(beam, flat.shape[1])]
        parent, code = keep // k, keep % k
        residual = residual[rows, parent] - vectors[code]
        codes = torch.cat([codes[rows, parent], code.unsqueeze(-1)], dim=-1)
    return codes[:, 0, :]
