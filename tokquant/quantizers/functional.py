"""Pure math shared by the binary quantizers (BSQ, LFQ): bits, code columns, entropies.

Soft assignment used by the entropy loss (SpeechBrain BSQ / LFQ): for a code
``c = scale * b`` with ``b`` in ``{-1, +1}^D``,

    p(c | x) = softmax_c(2 * inv_temperature * <x, c>).

Because ``<x, c>`` is a sum over dimensions, this softmax factorises exactly into
independent bits::

    p(c | x) = prod_i sigmoid(b_i * u_i),   u_i = 4 * inv_temperature * scale * x_i.

So the per-sample entropy is ``sum_i h(sigmoid(u_i))`` (O(N*D)), and the marginal of any
group of bits is a product over that group (O(N * 2^g) per group). The exact functions
below build the full ``N x 2^D`` softmax in row chunks and serve as the reference and
as the seed-compatible mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tokquant.quantizers.params import EXACT_MAX_BITS  # noqa: F401 - widest 2^D softmax built

#: Widest bit column ``encode`` emits; wider codes are split into several columns.
COLUMN_BITS = 32
#: Upper bound on elements of any N x 2^g (or N x K) intermediate built in one chunk.
DEFAULT_CHUNK_ELEMENTS = 1 << 24

#: Sums a tensor over the processes of a data-parallel run (identity when alone). The
#: codebook entropy is a function of the batch-mean distribution, so with the batch split
#: over ranks that mean must be formed from every rank's sum, not averaged afterwards.
BatchReduce = Callable[[torch.Tensor], torch.Tensor]


def _global_mean(prob_sum: torch.Tensor, n: int, reduce: BatchReduce | None) -> torch.Tensor:
    if reduce is None:
        return prob_sum / n
    count = reduce(torch.tensor(float(n), dtype=prob_sum.dtype, device=prob_sum.device))
    return reduce(prob_sum) / count


def column_widths(code_dim: int) -> list[int]:
    """Bits per code column: full 32-bit columns first, the remainder last."""
    full, rest = divmod(code_dim, COLUMN_BITS)
    return [COLUMN_BITS] * full + ([rest] if rest else [])


def bit_weights(width: int, device: torch.device | None = None) -> torch.Tensor:
    """``[2^(width-1), ..., 2, 1]``: weights that read a bit row MSB-first."""
    return 2 ** torch.arange(width - 1, -1, -1, device=device, dtype=torch.int64)


def bits_to_columns(bits: torch.Tensor) -> torch.Tensor:
    """``[..., D]`` booleans -> ``[..., G]`` int64 codes, MSB-first, first dims first."""
    cols = []
    start = 0
    for width in column_widths(bits.shape[-1]):
        chunk = bits[..., start : start + width].to(torch.int64)
        cols.append((chunk * bit_weights(width, bits.device)).sum(-1))
        start += width
    return torch.stack(cols, dim=-1)


def columns_to_bits(codes: torch.Tensor, code_dim: int) -> torch.Tensor:
    """Inverse of :func:`bits_to_columns` for the first ``codes.shape[-1]`` columns."""
    widths = column_widths(code_dim)[: codes.shape[-1]]
    parts = []
    for g, width in enumerate(widths):
        col = codes[..., g : g + 1].to(torch.int64)
        parts.append((col & bit_weights(width, codes.device)) != 0)
    return torch.cat(parts, dim=-1)


def all_bit_patterns(width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[2^width, width]`` 0/1 matrix; row ``k`` is ``k`` written MSB-first."""
    k = torch.arange(1 << width, device=device, dtype=torch.int64)
    return ((k[:, None] & bit_weights(width, device)) != 0).to(dtype)


def bit_logits(x: torch.Tensor, scale: float, inv_temperature: float) -> torch.Tensor:
    """``u_i`` such that ``p(bit_i = +1 | x) = sigmoid(u_i)``."""
    return x * (4.0 * inv_temperature * scale)


def binary_entropy(u: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of a Bernoulli(sigmoid(u)), finite and smooth for every ``u``."""
    p = torch.sigmoid(u)
    return p * F.softplus(-u) + (1.0 - p) * F.softplus(u)


def factorized_sample_entropy(u: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the exact per-sample entropy, from ``[N, D]`` bit logits."""
    return binary_entropy(u).sum(-1).mean()


def _entropy(p: torch.Tensor, log_floor: float) -> torch.Tensor:
    """``-sum p log p`` over the last dim; ``log_floor > 0`` clamps inside the log (seed mode).

    A code's batch-mean probability underflows to exactly 0 in float32 once every row's
    logits put it below ``exp(-104)`` (LFQ's unbounded inputs get there within a few dozen
    steps). Its term ``p log p`` is 0 and so is its true gradient (``dp/du`` carries a
    factor ``p``), but ``d(p log p)/dp = log p + 1`` is ``-inf`` there, and ``xlogy``'s
    backward turned that into NaN in every parameter. Taking the log of 1 where ``p`` is 0
    keeps the value and gives those codes the zero gradient they have.
    """
    if log_floor > 0:
        return -(p * p.clamp(min=log_floor).log()).sum(-1)
    return -(p * torch.where(p > 0, p, torch.ones_like(p)).log()).sum(-1)


def _chunked_row_sums(
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    rows: torch.Tensor,
    width: int,
    chunk_elements: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum ``fn(chunk)`` over row chunks of ``rows`` with at most ``chunk_elements`` per
    ``chunk x 2^width`` intermediate.

    Under autograd each chunk is checkpointed, so backward recomputes it instead of
    keeping every chunk's ``2^width`` probabilities alive: memory stays bounded.
    """
    step = max(1, chunk_elements >> width)
    total_a: torch.Tensor | None = None
    total_b: torch.Tensor | None = None
    for start in range(0, rows.shape[0], step):
        chunk = rows[start : start + step]
        if torch.is_grad_enabled() and chunk.requires_grad and rows.shape[0] > step:
            a, b = checkpoint(fn, chunk, use_reentrant=False)
        else:
            a, b = fn(chunk)
        total_a = a if total_a is None else total_a + a
        total_b = b if total_b is None else total_b + b
    assert total_a is not None and total_b is not None  # rows is never empty here
    return total_a, total_b


def exact_entropies(
    x: torch.Tensor,
    scale: float,
    inv_temperature: float,
    *,
    log_floor: float = 1e-5,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    reduce: BatchReduce | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample and codebook entropy (nats) from the full softmax over all 2^D codes.

    Args:
        x: ``[N, D]`` vectors, N >= 1 (already normalised for BSQ).
        scale: code magnitude (``1/sqrt(D)`` for BSQ, ``s`` for LFQ).
        log_floor: SpeechBrain clamps probabilities at 1e-5 inside the log; 0 gives the
            true entropy.
        reduce: cross-process sum for the batch-mean distribution (see BatchReduce).

    Returns:
        ``(mean per-row entropy, entropy of the batch-mean distribution)``, scalars.
    """
    n, d = x.shape
    if d > EXACT_MAX_BITS:
        raise ValueError(
            f"exact entropy builds a softmax over 2^code_dim codes and is limited to "
            f"code_dim <= {EXACT_MAX_BITS}. Found code_dim={d}; use entropy='factorized'"
        )
    codebook = (2.0 * all_bit_patterns(d, x.device, x.dtype) - 1.0) * scale
    factor = 2.0 * inv_temperature

    def chunk_terms(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prob = torch.softmax(factor * (rows @ codebook.T), dim=-1)
        return _entropy(prob, log_floor).sum(), prob.sum(0)

    entropy_sum, prob_sum = _chunked_row_sums(chunk_terms, x, d, chunk_elements)
    return entropy_sum / n, _entropy(_global_mean(prob_sum, n, reduce), log_floor)


def group_bounds(code_dim: int, group_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` bit ranges of at most ``group_size`` bits."""
    return [(s, min(s + group_size, code_dim)) for s in range(0, code_dim, group_size)]


def grouped_codebook_entropy(
    u: torch.Tensor,
    group_size: int,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    reduce: BatchReduce | None = None,
) -> torch.Tensor:
    """Sum over bit groups of the entropy (nats) of each group's batch-mean marginal.

    By subadditivity this is an upper bound on the joint codebook entropy, equal to it
    when one group holds all bits. Cost O(N * (D/g) * 2^g).

    Args:
        u: ``[N, D]`` bit logits (:func:`bit_logits`).
    """
    n, d = u.shape
    if group_size > EXACT_MAX_BITS:
        raise ValueError(
            f"group_size must be <= {EXACT_MAX_BITS} (each group builds a 2^group_size "
            f"distribution). Found: {group_size}"
        )
    total = u.new_zeros(())
    for start, stop in group_bounds(d, group_size):
        width = stop - start
        patterns = all_bit_patterns(width, u.device, u.dtype)

        def chunk_terms(
            rows: torch.Tensor, patterns: torch.Tensor = patterns
        ) -> tuple[torch.Tensor, torch.Tensor]:
            # log p(pattern) = sum_i logsigmoid(-u_i) + sum_i bit_i * u_i
            log_p = F.logsigmoid(-rows).sum(-1, keepdim=True) + rows @ patterns.T
            return rows.new_zeros(()), log_p.exp().sum(0)

        _, prob_sum = _chunked_row_sums(chunk_terms, u[:, start:stop], width, chunk_elements)
        total = total + _entropy(_global_mean(prob_sum, n, reduce), 0.0)
    return total


def code_histogram_entropy_bits(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy in bits and number of distinct rows of ``[N, G]`` integer codes."""
    if codes.shape[-1] == 1:
        _, counts = torch.unique(codes.reshape(-1), return_counts=True)
    else:
        _, counts = torch.unique(codes, dim=0, return_counts=True)
    p = counts.to(torch.float64) / counts.sum()
    return -(p * p.log2()).sum(), torch.tensor(float(counts.numel()), dtype=torch.float64)
