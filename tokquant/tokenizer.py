"""What a checkpoint holds: input normalisation, projections and a quantizer.

``features [T, F] -> normalise -> project in -> quantizer -> project out -> denormalise``.
The quantizer math knows nothing of this wrapper; this wrapper knows nothing of files.
"""

from __future__ import annotations

import torch
from torch import nn

from tokquant.config import TokenizerConfig
from tokquant.quantizers import Quantizer, QuantizerOutput, build_quantizer


def _projection(kind: str, d_in: int, d_out: int, hidden: int, depth: int = 1) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


class Tokenizer(nn.Module):
    """Features ``[..., feature_dim]`` to codes ``[..., G]`` and back.

    Args:
        config: a validated :class:`TokenizerConfig`; ``config.features.dim`` must be set.
    """

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        feature_dim = config.features.dim
        if feature_dim is None:
            raise ValueError("config.features.dim must be set before building a Tokenizer")
        self.config = config
        params = config.quantizer.for_features(feature_dim)
        inner = params.input_dim
        kind = config.projection.kind
        if kind == "none" and inner != feature_dim:
            raise ValueError(
                f"projection.kind 'none' needs the quantizer dim ({inner}) to equal "
                f"features.dim ({feature_dim})"
            )
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        hidden = config.projection.hidden
        depth = config.projection.depth
        self.project_in = _projection(kind, feature_dim, inner, hidden, depth)
        self.quantizer: Quantizer = build_quantizer(params)
        self.project_out = _projection(kind, inner, feature_dim, hidden, depth)

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def column_cardinalities(self) -> list[int]:
        return self.quantizer.column_cardinalities

    @property
    def column_names(self) -> list[str]:
        return self.quantizer.column_names

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """Reconstruction in the normalised feature space, and the quantizer's output."""
        out = self.quantizer(self.project_in(self.normalize(features)))
        return self.project_out(out.quantized), out

    @torch.no_grad()
    def encode(
        self, features: torch.Tensor, *, levels: int | None = None, beam: int | None = None
    ) -> torch.Tensor:
        """``[..., F]`` float features -> ``[..., G]`` int64 codes.

        ``levels`` keeps the first levels only and ``beam`` searches with a beam, for
        quantizers that support them (RVQ; None: the beam its codebooks were fitted for).
        """
        z = self.project_in(self.normalize(features.float()))
        if self.quantizer.supports_levels:
            return self.quantizer.encode(z, num_levels=levels, beam=beam)  # type: ignore[call-arg]
        if levels is None and beam in (None, 1):  # a beam of one is every family's search
            return self.quantizer.encode(z)
        raise ValueError("levels and beam apply to RVQ tokenizers only")

    def columns(self, levels: int | None = None) -> tuple[list[str], list[int]]:
        """Names and cardinalities of the code columns (the first ``levels`` for RVQ)."""
        names, cards = self.column_names, self.column_cardinalities
        return (names, cards) if levels is None else (names[:levels], cards[:levels])

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``[..., G]`` codes -> ``[..., F]`` features in the original (denormalised) units."""
        return self.project_out(self.quantizer.decode(codes)) * self.std + self.mean
