"""The quantizer families behind one interface (:class:`Quantizer`)."""

from tokquant.quantizers.base import BatchOps, Quantizer, QuantizerOutput
from tokquant.quantizers.binary import BSQ, LFQ
from tokquant.quantizers.fsq import FSQ
from tokquant.quantizers.params import Params
from tokquant.quantizers.rvq import RVQ

#: Every family, by the name configs and token files use.
QUANTIZERS: dict[str, type[Quantizer]] = {q.kind: q for q in (BSQ, LFQ, RVQ, FSQ)}


def build_quantizer(params: Params) -> Quantizer:
    """The quantizer a family's params describe."""
    return QUANTIZERS[params.family].from_params(params)


__all__ = ["BSQ", "FSQ", "LFQ", "QUANTIZERS", "RVQ", "BatchOps", "Quantizer", "QuantizerOutput",
           "build_quantizer"]  # fmt: skip
