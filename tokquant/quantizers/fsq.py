"""FSQ: finite scalar quantization (Mentzer et al. 2023), the tokenizer of CosyVoice 2 and
XCodec2.

Each of the ``D = len(levels)`` dims is bounded by ``tanh`` to ``L_d`` values and rounded;
the implicit codebook is the grid of ``prod(levels)`` points, so there is nothing to learn
in the quantizer, no codebook collapse and no aux loss. The bound is vector-quantize-
pytorch's (``eps = 1e-3``; even ``L`` shifted by half a step), and so are the codes:
dim ``d``'s level index ``i_d = round(bounded_d) + L_d // 2`` in ``[0, L_d)``, and the code
``sum_d i_d * prod(L_0 .. L_{d-1})``, the first dim least significant.

Code layout of ``encode``: one column while ``prod(levels) <= 2**32``; wider grids split
the dims, in order, into consecutive groups of at most ``2**32`` codes, one column each,
each spelled as above. Codes never depend on the caller's precision: the bound and the
rounding run in float32 with autocast off (bf16 rounding would merge neighbouring
levels).
"""

from __future__ import annotations

import math

import torch

from tokquant.quantizers import functional as Fq
from tokquant.quantizers.base import (
    Quantizer,
    QuantizerOutput,
    compute_dtype,
    full_precision,
    straight_through,
)
from tokquant.quantizers.params import FSQParams

#: vector-quantize-pytorch's margin inside the tanh bound.
EPS = 1e-3
MAX_COLUMN_CODES = 2**32


def level_groups(levels: list[int]) -> list[tuple[int, int]]:
    """Consecutive ``[start, stop)`` dim ranges whose grids hold at most 2**32 codes."""
    groups, start, size = [], 0, 1
    for d, level in enumerate(levels):
        if size * level > MAX_COLUMN_CODES:
            groups.append((start, d))
            start, size = d, 1
        size *= level
    groups.append((start, len(levels)))
    return groups


class FSQ(Quantizer):
    """Finite scalar quantizer over ``levels`` (each 3..1000 values per dim).

    Args:
        levels: values per dim, e.g. ``[8, 5, 5, 5]`` (1,000 codes, ~10 bits) or
            ``[8, 8, 8, 5, 5, 5]`` (64,000 codes, ~16 bits).

    Example:
        >>> q = FSQ([8, 5, 5, 5])
        >>> quantized, indices, aux_loss = q(torch.randn(2, 50, 4))
        >>> indices.shape, int(indices.max()) < 1000
        (torch.Size([2, 50, 1]), True)
    """

    kind = "fsq"
    params: FSQParams

    def __init__(self, levels: list[int] | tuple[int, ...] = (8, 5, 5, 5)) -> None:
        super().__init__()
        params = FSQParams(list(levels) if isinstance(levels, (list, tuple)) else levels)
        params.validate()
        self.params = params
        lv = torch.tensor(params.levels, dtype=torch.float64)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_half_width", torch.floor(lv / 2), persistent=False)
        self._groups = level_groups(params.levels)

    @property
    def dim(self) -> int:
        return len(self.params.levels)

    @property
    def column_cardinalities(self) -> list[int]:
        return [math.prod(self.params.levels[a:b]) for a, b in self._groups]

    @property
    def column_names(self) -> list[str]:
        if len(self._groups) == 1:
            return ["fsq"]
        return [f"dims{a}-{b - 1}" for a, b in self._groups]

    def _bounded(self, z: torch.Tensor) -> torch.Tensor:
        """``tanh`` bound to ``(-L/2, L/2)``, shifted so that even ``L`` rounds to ``L`` values."""
        levels = self._levels.to(z.dtype)
        half_l = (levels - 1) * (1 + EPS) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def _level_indices(self, rounded: torch.Tensor) -> torch.Tensor:
        return (rounded + self._half_width.to(rounded.dtype)).to(torch.int64)

    def _columns(self, level_indices: torch.Tensor) -> torch.Tensor:
        columns = []
        for a, b in self._groups:
            code = torch.zeros_like(level_indices[..., 0])
            for d in reversed(range(a, b)):
                code = code * self.params.levels[d] + level_indices[..., d]
            columns.append(code)
        return torch.stack(columns, dim=-1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` float -> ``[..., G]`` int64 codes (see the module docstring)."""
        self._check_input(x)
        with torch.no_grad(), full_precision(x.device):
            rounded = self._bounded(x.to(compute_dtype(x))).round()
            return self._columns(self._level_indices(rounded))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[..., G]`` codes -> ``[..., D]`` float32 grid points in ``[-1, 1]``."""
        self._check_codes(codes, max_columns=len(self._groups))
        for g, card in enumerate(self.column_cardinalities):
            if codes.numel() and (codes[..., g].min() < 0 or codes[..., g].max() >= card):
                raise ValueError(
                    f"codes of column {g} must be in [0, {card}). "
                    f"Found: [{int(codes[..., g].min())}, {int(codes[..., g].max())}]"
                )
        dims = []
        for g, (a, b) in enumerate(self._groups):
            rest = codes[..., g].to(torch.int64)
            for d in range(a, b):
                dims.append(rest % self.params.levels[d])
                rest = rest // self.params.levels[d]
        indices = torch.stack(dims, dim=-1).to(torch.float32)
        half = self._half_width.to(torch.float32)
        return (indices - half) / half

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        """Quantise ``x`` of shape ``[..., D]``: grid points forward, the gradient of the
        bound backward (straight through the rounding); the aux loss is 0."""
        self._check_input(x)
        with full_precision(x.device):
            bounded = self._bounded(x.to(compute_dtype(x)))
            rounded = bounded.round()
            half = self._half_width.to(bounded.dtype)
            quantized = straight_through(rounded / half, bounded / half)
            codes = self._columns(self._level_indices(rounded.detach()))
            metrics = self._metrics(codes)
        return QuantizerOutput(quantized, codes, bounded.new_zeros(()), metrics)

    @torch.no_grad()
    def _metrics(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = codes.reshape(-1, codes.shape[-1])
        if flat.shape[0] == 0:
            return {}
        entropy_bits, distinct = Fq.code_histogram_entropy_bits(flat)
        return {
            "codebook_usage": distinct / float(math.prod(self.column_cardinalities)),
            "code_entropy_bits": entropy_bits,
        }
