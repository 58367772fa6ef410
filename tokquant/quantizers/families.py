"""Every quantizer family by the name configs and token files use."""

from __future__ import annotations

from tokquant.quantizers.base import Quantizer
from tokquant.quantizers.binary import BSQ, LFQ
from tokquant.quantizers.fsq import FSQ
from tokquant.quantizers.params import Params
from tokquant.quantizers.rvq import RVQ

QUANTIZERS: dict[str, type[Quantizer]] = {q.kind: q for q in (BSQ, LFQ, RVQ, FSQ)}


def build_quantizer(params: Params) -> Quantizer:
    """The quantizer a family's params describe."""
    return QUANTIZERS[params.family].from_params(params)
