"""Drop-in classes with other libraries' exact signatures and shapes.

:class:`BinarySphericalQuantizer` replaces SpeechBrain's class of that name: the same
constructor, ``forward(x, inv_temperature=100.0)`` returning the tuple
``(quantized, indices, aux_loss)`` with ``indices`` of shape ``[...]`` (no code-column
axis), the same values (exact entropy with SpeechBrain's 1e-5 log clamp up to 20 bits).
It keeps none of that class's defects: any leading shape gives a scalar loss over the
flat batch, memory is chunked, and ``decode`` turns indices back into vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from tokquant.quantizers.binary import BSQ
from tokquant.quantizers.params import EXACT_MAX_BITS

#: Indices are one integer per vector, so codes must fit one 32-bit column.
MAX_COMPAT_CODE_DIM = 32


class BinarySphericalQuantizer(nn.Module):
    """SpeechBrain's ``BinarySphericalQuantizer(code_dim, entropy_loss_weight=0.1,
    diversity_gamma=1.0)``, backed by :class:`tokquant.BSQ`.

    Example:
        >>> quantizer = BinarySphericalQuantizer(13)
        >>> quant, indices, aux_loss = quantizer(torch.randn(2, 50, 13))
        >>> indices.shape
        torch.Size([2, 50])
    """

    def __init__(
        self, code_dim: int, entropy_loss_weight: float = 0.1, diversity_gamma: float = 1.0
    ) -> None:
        super().__init__()
        if isinstance(code_dim, int) and code_dim > MAX_COMPAT_CODE_DIM:
            raise ValueError(
                f"code_dim must be <= {MAX_COMPAT_CODE_DIM} for one index per vector; "
                f"use tokquant.BSQ for wider codes. Found: {code_dim}"
            )
        entropy = (
            "exact" if isinstance(code_dim, int) and code_dim <= EXACT_MAX_BITS else "factorized"
        )
        self.bsq = BSQ(code_dim, entropy_loss_weight, diversity_gamma, entropy=entropy)
        self.code_dim = code_dim
        self.entropy_loss_weight = entropy_loss_weight
        self.diversity_gamma = diversity_gamma

    def forward(
        self, x: torch.Tensor, inv_temperature: float = 100.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.bsq(x, inv_temperature=inv_temperature)
        return out.quantized, out.indices[..., 0], out.aux_loss

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """``[...]`` indices -> ``[..., code_dim]`` quantized vectors (SpeechBrain has none)."""
        return self.bsq.decode(indices.unsqueeze(-1))
