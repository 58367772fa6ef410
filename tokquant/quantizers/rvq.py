"""Residual vector quantisation: the residual loop over :class:`Codebook` levels.

Level ``l`` quantises the residual ``r_l`` to its nearest code ``q_l``; the next
residual is ``r_{l+1} = r_l - sg(q_l)``; the output is the straight-through sum of the
``q_l``. Per level the loss is ``beta * ||sg(q_l) - r_l||^2 + ||q_l - sg(r_l)||^2``
(means over elements), summed over levels. Metrics come from code histograms
(bincount), not ``[N, K]`` one-hots.

Codebooks start as standard-normal draws (seeded by the caller's generator state);
:meth:`RVQ.init_from_data` replaces them with k-means centroids, level by level on the
residuals, which is what training should use.

Training options: EMA codebook updates instead of gradients (``ema_decay``), dead-code
replacement (``dead_code_threshold``), and quantizer dropout (``quantizer_dropout``: a
random number of levels per batch, so every prefix of levels decodes well). Encoding
options: fewer levels, and beam search (:func:`tokquant.quantizers.search.beam_search`).

Checkpoints name the tensors as tokquant 0.1 did (``codebooks.{l}``,
``ema_count_{l}``, ``ema_sum_{l}``, ``project_in.{l}.*``, ``project_out.{l}.*``): the
state-dict hooks of :mod:`tokquant.quantizers.rvq_names` translate, so the file format
does not follow the module layout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tokquant.quantizers.base import (
    Quantizer,
    QuantizerOutput,
    compute_dtype,
    full_precision,
    straight_through,
)
from tokquant.quantizers.codebook import Codebook
from tokquant.quantizers.functional import DEFAULT_CHUNK_ELEMENTS
from tokquant.quantizers.params import RVQParams
from tokquant.quantizers.rvq_init import DataInit
from tokquant.quantizers.rvq_names import from_v1_names, to_v1_names
from tokquant.quantizers.search import SEARCH_METHODS, beam_search, nearest_code

#: Frames k-means sees per codebook entry (capped at :data:`KMEANS_MAX_FRAMES`).
KMEANS_FRAMES_PER_CODE = 32
KMEANS_MAX_FRAMES = 50_000


def histogram_metrics(idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(perplexity, usage, bits_per_index)`` of one level's indices, from a bincount."""
    counts = torch.bincount(idx, minlength=k).to(torch.float64)
    p = counts / counts.sum().clamp(min=1.0)
    bits = -torch.xlogy(p, p).sum() / math.log(2.0)
    return torch.exp2(bits), (counts > 0).sum() / float(k), bits


class RVQ(DataInit, Quantizer):
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
    supports_levels = True
    params: RVQParams

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
        beam: int = 1,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        search: str = "matmul",
    ) -> None:
        super().__init__()
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
            raise ValueError(f"num_levels must be an int >= 1. Found: {num_levels!r}")
        if embedding_dim is None:
            raise ValueError("embedding_dim must be an int >= 1. Found: None")
        params = RVQParams(
            num_levels,
            list(num_embeddings) if isinstance(num_embeddings, tuple) else num_embeddings,
            embedding_dim,
            beta,
            ema_decay,
            dead_code_threshold,
            dead_code_window,
            quantizer_dropout,
            codebook_dim,
            normalized,
            beam,
        )
        params.validate()
        if chunk_elements < 1:
            raise ValueError(f"chunk_elements must be >= 1. Found: {chunk_elements}")
        if search not in SEARCH_METHODS:
            raise ValueError(f"search must be one of {SEARCH_METHODS}. Found: {search!r}")
        self.params = params
        self.num_levels = num_levels
        self.num_embeddings = params.sizes()
        self.embedding_dim = embedding_dim
        self.chunk_elements = chunk_elements
        self.search = search
        space = codebook_dim or embedding_dim
        self.levels = nn.ModuleList(
            [
                Codebook(
                    k,
                    space,
                    embedding_dim,
                    ema=ema_decay is not None,
                    track_usage=dead_code_threshold > 0,
                    projected=codebook_dim is not None,
                    normalized=normalized,
                )
                for k in self.num_embeddings
            ]
        )
        if dead_code_threshold > 0:
            self.register_buffer(
                "window_steps", torch.zeros((), dtype=torch.int64), persistent=False
            )
        self.register_state_dict_post_hook(to_v1_names)
        self.register_load_state_dict_pre_hook(from_v1_names)

    @property
    def dim(self) -> int:
        return self.embedding_dim

    @property
    def codebooks(self) -> list[nn.Parameter]:
        """Each level's code vectors ``[K, space]`` (the parameters themselves)."""
        return [level.vectors for level in self.levels]

    @property
    def column_cardinalities(self) -> list[int]:
        return list(self.num_embeddings)

    @property
    def column_names(self) -> list[str]:
        return [f"level{level + 1}" for level in range(self.num_levels)]

    @property
    def plain(self) -> bool:
        """Codes live in the embedding space and are searched by Euclidean distance."""
        return self.params.codebook_dim is None and not self.params.normalized

    @property
    def supports_beam(self) -> bool:
        return self.plain

    @property
    def init_frames(self) -> int:
        if not self.plain:
            return 0
        k_max = max(self.num_embeddings)
        return min(max(KMEANS_FRAMES_PER_CODE * k_max, 4096), KMEANS_MAX_FRAMES)

    def level_vectors(self, level: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[K, D]``: every code of a level as the vector it adds to the output."""
        return self.levels[level].all_vectors(dtype)

    def _nearest(self, level: int, residual: torch.Tensor) -> torch.Tensor:
        book = self.levels[level]
        with torch.no_grad():
            return nearest_code(
                book.search_space(residual),
                book.search_vectors(residual.dtype),
                chunk_elements=self.chunk_elements,
                method=self.search,
            )

    # Forward ----------------------------------------------------------------------------

    def _active_levels(self) -> int:
        if self.training and self.params.quantizer_dropout > 0:
            if float(torch.rand(())) < self.params.quantizer_dropout:
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
            residual, q_sum, aux = flat, torch.zeros_like(flat), flat.new_zeros(())
            indices, metrics, replaced = [], {}, 0
            # With a beam the codes are searched first; each level is still fitted to the
            # residual its predecessors leave (fitting it to what all other levels leave
            # measured 0.2-0.5 dB worse on held-out speech).
            searched = self._training_codes(flat, active)
            for level in range(active):
                idx = (
                    self._nearest(level, residual.detach())
                    if searched is None
                    else searched[:, level]
                )
                q = self.levels[level].lookup(idx, flat.dtype)
                if flat.shape[0]:
                    aux = self._add_level_loss(aux, q, residual)
                    metrics.update(_level_metrics(level, idx, self.num_embeddings[level]))
                    if self.training:
                        replaced += self._train_level(level, residual.detach(), idx)
                residual = residual - q.detach()
                q_sum = q_sum + q.detach()
                indices.append(idx)
            if self.training and self.params.dead_code_threshold > 0:
                self._end_window_step()
            if metrics:
                metrics.update(self._summary_metrics(metrics, active, replaced))
            # Codebook gradients come from the codebook loss; the output passes the
            # input's gradient straight through.
            quantized = straight_through(q_sum, flat)
        indices += [torch.full_like(indices[0], -1)] * (self.num_levels - active)
        return QuantizerOutput(
            quantized=quantized.reshape(*lead_shape, self.embedding_dim),
            indices=torch.stack(indices, dim=-1).reshape(*lead_shape, self.num_levels),
            aux_loss=aux,
            metrics=metrics,
        )

    def _training_codes(self, flat: torch.Tensor, active: int) -> torch.Tensor | None:
        """Codes for a training step by beam search, when the codebooks are fitted for a
        beam; None: greedy, level by level (the residuals then follow those codes)."""
        if not (self.training and self.params.beam > 1 and flat.shape[0]):
            return None
        levels = [self.level_vectors(lv, flat.dtype) for lv in range(active)]
        return beam_search(
            flat.detach(), levels, self.params.beam, chunk_elements=self.chunk_elements
        )

    def _add_level_loss(
        self, aux: torch.Tensor, q: torch.Tensor, residual: torch.Tensor
    ) -> torch.Tensor:
        """Commitment, plus the codebook loss when codebooks learn by gradient."""
        p = self.params
        aux = aux + p.beta * (q.detach() - residual).pow(2).mean()
        if p.ema_decay is None or p.codebook_dim is not None:
            aux = aux + (q - residual.detach()).pow(2).mean()
        return aux

    def _summary_metrics(
        self, metrics: dict[str, torch.Tensor], active: int, replaced: int
    ) -> dict[str, torch.Tensor]:
        def total(name: str) -> torch.Tensor:
            return sum(metrics[f"rvq_l{lv + 1}_{name}"] for lv in range(active))  # type: ignore[return-value]

        out = {
            "rvq_perplexity_mean": total("perplexity") / active,
            "rvq_usage_mean": total("usage") / active,
            "rvq_bits_per_index_sum": total("bits_per_index"),
            "rvq_active_levels": torch.tensor(float(active)),
        }
        if self.params.dead_code_threshold > 0:
            out["rvq_dead_codes_replaced"] = torch.tensor(float(replaced))
        return out

    # EMA and dead codes -----------------------------------------------------------------

    def _train_level(self, level: int, residual: torch.Tensor, idx: torch.Tensor) -> int:
        """The training-time updates of one level; returns how many codes were replaced."""
        p, book, ops = self.params, self.levels[level], self.batch_ops
        reduce = (lambda t: t) if ops is None else ops.sum
        with torch.no_grad():
            target = book.to_space(residual)
        if p.ema_decay is not None:
            book.ema_update(target, idx, p.ema_decay, reduce)
        if p.dead_code_threshold <= 0:
            return 0
        book.count_usage(idx, reduce)
        if int(self.window_steps) + 1 < p.dead_code_window:
            return 0
        return book.replace_dead(target, p.dead_code_threshold, None if ops is None else ops.gather)

    def _end_window_step(self) -> None:
        self.window_steps.add_(1)
        if int(self.window_steps) >= self.params.dead_code_window:
            self.window_steps.zero_()

    # Encode / decode --------------------------------------------------------------------

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, num_levels: int | None = None, beam: int | None = None
    ) -> torch.Tensor:
        """``[..., D]`` -> ``[..., n]`` int64 codes with ``n = num_levels or M``.

        ``beam > 1`` keeps the ``beam`` best partial code sequences per vector, ranked by
        the reconstruction error so far; ``beam = 1`` is the greedy search; None: the
        beam the codebooks were fitted for (``beam`` of the constructor). Beam search
        needs plain levels.
        """
        beam = self.params.beam if beam is None else beam
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
                levels = [self.level_vectors(lv, residual.dtype) for lv in range(n)]
                codes = beam_search(residual, levels, beam, chunk_elements=self.chunk_elements)
                return codes.reshape(*lead_shape, n)
            cols = []
            for level in range(n):
                idx = self._nearest(level, residual)
                residual -= self.levels[level].lookup(idx, residual.dtype)
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
            vec = self.levels[level].lookup(idx, torch.float32)
            out = vec if out is None else out + vec
        assert out is not None
        return out


def _level_metrics(level: int, idx: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    perplexity, usage, bits = histogram_metrics(idx, k)
    name = f"rvq_l{level + 1}"
    return {
        f"{name}_perplexity": perplexity,
        f"{name}_usage": usage,
        f"{name}_bits_per_index": bits,
    }
